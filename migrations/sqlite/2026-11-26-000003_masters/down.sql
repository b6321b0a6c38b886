DROP TABLE master_items;
DROP TABLE masters;
