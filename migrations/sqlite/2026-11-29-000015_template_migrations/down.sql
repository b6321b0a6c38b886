DROP TABLE template_migrations;
