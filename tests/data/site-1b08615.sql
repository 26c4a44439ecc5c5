BEGIN TRANSACTION;
CREATE TABLE counts (
	camera VARCHAR(64) NOT NULL, 
	zone VARCHAR(64) NOT NULL, 
	minute INTEGER NOT NULL, 
	people INTEGER NOT NULL, 
	with_mask INTEGER NOT NULL, 
	without_mask INTEGER NOT NULL, 
	mask_weared_incorrect INTEGER NOT NULL, 
	PRIMARY KEY (camera, zone, minute)
);
INSERT INTO "counts" VALUES('door','inside',1789999980,1,1,0,0);
INSERT INTO "counts" VALUES('door','',1790000340,1,0,1,0);
INSERT INTO "counts" VALUES('hall','desk',1790000760,1,0,0,1);
INSERT INTO "counts" VALUES('door','inside',1790001180,1,1,0,0);
INSERT INTO "counts" VALUES('hall','',1790001540,1,0,1,0);
INSERT INTO "counts" VALUES('door','inside',1790001960,1,0,1,0);
CREATE TABLE events (
	id INTEGER NOT NULL, 
	camera VARCHAR(64) NOT NULL, 
	zone VARCHAR(64), 
	track_id INTEGER NOT NULL, 
	label VARCHAR(32) NOT NULL, 
	probability FLOAT NOT NULL, 
	first_seen FLOAT NOT NULL, 
	last_seen FLOAT NOT NULL, 
	frames INTEGER NOT NULL, 
	snapshot VARCHAR(255), 
	PRIMARY KEY (id)
);
INSERT INTO "events" VALUES(1,'door','inside',1,'with_mask',0.9,1789999980.0,1789999985.0,4,'door-1.jpg');
INSERT INTO "events" VALUES(2,'door',NULL,2,'without_mask',0.8,1790000380.0,1790000385.0,4,NULL);
INSERT INTO "events" VALUES(3,'hall','desk',3,'mask_weared_incorrect',0.6,1790000780.0,1790000785.0,4,'hall-3.jpg');
INSERT INTO "events" VALUES(4,'door','inside',4,'with_mask',0.7,1790001180.0,1790001185.0,4,NULL);
INSERT INTO "events" VALUES(5,'hall',NULL,5,'without_mask',0.85,1790001580.0,1790001585.0,4,'hall-5.jpg');
INSERT INTO "events" VALUES(6,'door','inside',6,'without_mask',0.9,1790001980.0,1790001985.0,4,NULL);
CREATE TABLE schema_version (
	version INTEGER NOT NULL
);
INSERT INTO "schema_version" VALUES(1);
CREATE INDEX ix_events_camera ON events (camera);
CREATE INDEX ix_events_last_seen ON events (last_seen);
COMMIT;
