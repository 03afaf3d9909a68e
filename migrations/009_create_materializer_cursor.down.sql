DROP TABLE materializer_cursor;
