DROP TABLE operators;
DROP TABLE platform_settings;
