DROP TABLE write_marks;
