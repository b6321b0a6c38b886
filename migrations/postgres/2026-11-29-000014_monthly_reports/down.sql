DROP TABLE monthly_reports;
