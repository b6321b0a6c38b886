DROP TABLE announcement_tenants;
DROP TABLE announcements;
