-- token prom: mw_inRn_BiPoNcJBd09MPMulymXNBs_Lt-JQDL2ZwUGijs
-- token script: mw_RMFQOFkJCqfpee68BAhYRHrxDbO9hGZRZ-FYre1xO5E
-- session ana: 2TanLGRwRjGSUZKNs95N5y9yea9YqWBPKrjB4pLuXeE
BEGIN TRANSACTION;
CREATE TABLE access_log (
	id INTEGER NOT NULL, 
	at FLOAT NOT NULL, 
	user VARCHAR(64), 
	client VARCHAR(64), 
	action VARCHAR(32) NOT NULL, 
	target VARCHAR(255), 
	PRIMARY KEY (id)
);
INSERT INTO "access_log" VALUES(1,1789999980.0,'ana','127.0.0.1','login',NULL);
CREATE TABLE alerts (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	rule INTEGER NOT NULL, 
	camera VARCHAR(64) NOT NULL, 
	zone VARCHAR(64), 
	at FLOAT NOT NULL, 
	compliance FLOAT NOT NULL, 
	compliance_low FLOAT NOT NULL, 
	compliance_high FLOAT NOT NULL, 
	observed FLOAT NOT NULL, 
	below FLOAT NOT NULL, 
	people INTEGER NOT NULL, 
	with_mask INTEGER NOT NULL, 
	unassessable INTEGER NOT NULL, 
	minutes INTEGER NOT NULL, 
	min_people INTEGER NOT NULL
);
INSERT INTO "alerts" VALUES(1,0,'door','inside',1790001980.0,0.4,0.2,0.6,0.5,80.0,4,2,0,15,3);
CREATE TABLE alerts_kept_since (
	since FLOAT NOT NULL
);
CREATE TABLE api_tokens (
	id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	token_hash VARCHAR(64) NOT NULL, 
	scope VARCHAR(8) NOT NULL, 
	created FLOAT NOT NULL, 
	last_used FLOAT, 
	owner INTEGER, 
	expires FLOAT, 
	cameras VARCHAR(2000), 
	PRIMARY KEY (id), 
	UNIQUE (name), 
	UNIQUE (token_hash)
);
INSERT INTO "api_tokens" VALUES(1,'prom','d860996233bc76e382b811be5ff73feea72fd7ffd33a092191581142d8223130','read',1.79664990242723798755e+09,NULL,NULL,NULL,NULL);
INSERT INTO "api_tokens" VALUES(2,'script','ae9654268c7fd68dcd9f1e851604655a0eb61723933e99b6962f75d3a6944393','full',1.79664990243397164346e+09,NULL,1,NULL,NULL);
CREATE TABLE auth_chores (
	chore VARCHAR(64) NOT NULL, 
	done FLOAT NOT NULL, 
	PRIMARY KEY (chore)
);
INSERT INTO "auth_chores" VALUES('unknown_names',1.79664990172699141502e+09);
CREATE TABLE auth_schema_version (
	version INTEGER NOT NULL
);
INSERT INTO "auth_schema_version" VALUES(1);
INSERT INTO "auth_schema_version" VALUES(2);
INSERT INTO "auth_schema_version" VALUES(3);
INSERT INTO "auth_schema_version" VALUES(4);
INSERT INTO "auth_schema_version" VALUES(5);
INSERT INTO "auth_schema_version" VALUES(6);
INSERT INTO "auth_schema_version" VALUES(7);
CREATE TABLE counts (
	camera VARCHAR(64) NOT NULL, 
	zone VARCHAR(64) NOT NULL, 
	minute INTEGER NOT NULL, 
	people INTEGER NOT NULL, 
	with_mask INTEGER NOT NULL, 
	without_mask INTEGER NOT NULL, 
	mask_weared_incorrect INTEGER NOT NULL, 
	unassessable INTEGER NOT NULL, 
	PRIMARY KEY (camera, zone, minute)
);
INSERT INTO "counts" VALUES('door','inside',1789999980,1,1,0,0,0);
INSERT INTO "counts" VALUES('door','',1790000340,1,0,1,0,0);
INSERT INTO "counts" VALUES('hall','desk',1790000760,1,0,0,1,0);
INSERT INTO "counts" VALUES('door','inside',1790001180,1,1,0,0,0);
INSERT INTO "counts" VALUES('hall','',1790001540,1,0,1,0,0);
INSERT INTO "counts" VALUES('door','inside',1790001960,1,0,1,0,0);
CREATE TABLE counts_by_quarter (
	camera VARCHAR(64) NOT NULL, 
	zone VARCHAR(64) NOT NULL, 
	minute INTEGER NOT NULL, 
	people INTEGER NOT NULL, 
	with_mask INTEGER NOT NULL, 
	without_mask INTEGER NOT NULL, 
	mask_weared_incorrect INTEGER NOT NULL, 
	unassessable INTEGER NOT NULL, 
	PRIMARY KEY (camera, zone, minute)
);
INSERT INTO "counts_by_quarter" VALUES('door','inside',1789999200,1,1,0,0,0);
INSERT INTO "counts_by_quarter" VALUES('door','',1790000100,1,0,1,0,0);
INSERT INTO "counts_by_quarter" VALUES('hall','desk',1790000100,1,0,0,1,0);
INSERT INTO "counts_by_quarter" VALUES('door','inside',1790001000,1,1,0,0,0);
INSERT INTO "counts_by_quarter" VALUES('hall','',1790001000,1,0,1,0,0);
INSERT INTO "counts_by_quarter" VALUES('door','inside',1790001900,1,0,1,0,0);
CREATE TABLE events (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	camera VARCHAR(64) NOT NULL, 
	zone VARCHAR(64), 
	track_id INTEGER NOT NULL, 
	label VARCHAR(32) NOT NULL, 
	probability FLOAT NOT NULL, 
	first_seen FLOAT NOT NULL, 
	last_seen FLOAT NOT NULL, 
	frames INTEGER NOT NULL, 
	snapshot VARCHAR(255)
);
INSERT INTO "events" VALUES(1,'door','inside',1,'with_mask',0.9,1789999980.0,1789999985.0,4,'door-1.jpg');
INSERT INTO "events" VALUES(2,'door',NULL,2,'without_mask',0.8,1790000380.0,1790000385.0,4,NULL);
INSERT INTO "events" VALUES(3,'hall','desk',3,'mask_weared_incorrect',0.6,1790000780.0,1790000785.0,4,'hall-3.jpg');
INSERT INTO "events" VALUES(4,'door','inside',4,'with_mask',0.7,1790001180.0,1790001185.0,4,NULL);
INSERT INTO "events" VALUES(5,'hall',NULL,5,'without_mask',0.85,1790001580.0,1790001585.0,4,'hall-5.jpg');
INSERT INTO "events" VALUES(6,'door','inside',6,'without_mask',0.9,1790001980.0,1790001985.0,4,NULL);
CREATE TABLE failure_windows (
	seconds FLOAT NOT NULL, 
	seen FLOAT NOT NULL, 
	PRIMARY KEY (seconds)
);
CREATE TABLE login_failures (
	id INTEGER NOT NULL, 
	"key" VARCHAR(200) NOT NULL, 
	at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE recovery_codes (
	id INTEGER NOT NULL, 
	user_id INTEGER NOT NULL, 
	code_hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "recovery_codes" VALUES(2,2,'88b67577a9359ff0a9ba75da804a7fb82a2c49b1d22f1cb0caa4db64f6374669');
INSERT INTO "recovery_codes" VALUES(3,2,'aa92fdf657573e6c4b373fefa2859f3c282fec460d8c5c49b829576f2e611792');
INSERT INTO "recovery_codes" VALUES(4,2,'86573513b104a75e6c628e2f5f647ce0d24c6f0750175a2351198067d09d7202');
INSERT INTO "recovery_codes" VALUES(5,2,'a92d20e5aa62bc656e0dadefe6c1cdf0c1dc920bffa718636fcf5f8a77d5160e');
INSERT INTO "recovery_codes" VALUES(6,2,'c48e387875b513d831bf270accedcb135809b3574aade34c4dce805785ba451b');
INSERT INTO "recovery_codes" VALUES(7,2,'c8b2e253ec48851a66e831320fdf35418f1e079d51b01485bda5a9efb0614c5a');
INSERT INTO "recovery_codes" VALUES(8,2,'b06dee83f8aae7bd316cadd118429615e9874a34970d06192694cd41dce7d44b');
INSERT INTO "recovery_codes" VALUES(9,2,'d543c102307a1f733cec53d32834d180db37bf31a71bfc7a7b5e15b74f387ad0');
INSERT INTO "recovery_codes" VALUES(10,2,'e4a553877bccb02203282778ad88baea0a9d2731927e9269ecb6a1a15e5d065c');
CREATE TABLE schema_version (
	version INTEGER NOT NULL
);
INSERT INTO "schema_version" VALUES(1);
INSERT INTO "schema_version" VALUES(2);
INSERT INTO "schema_version" VALUES(3);
INSERT INTO "schema_version" VALUES(4);
INSERT INTO "schema_version" VALUES(5);
INSERT INTO "schema_version" VALUES(6);
INSERT INTO "schema_version" VALUES(7);
CREATE TABLE sessions (
	token_hash VARCHAR(64) NOT NULL, 
	user_id INTEGER NOT NULL, 
	created FLOAT NOT NULL, 
	last_seen FLOAT NOT NULL, 
	PRIMARY KEY (token_hash)
);
INSERT INTO "sessions" VALUES('32dfc420acd0eaeecca3469a2ab6cc4ed62bf02b6b340f38faa1bb1d9489a8d9',1,1789999980.0,1789999980.0);
CREATE TABLE users (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	name VARCHAR(64) NOT NULL, 
	password_hash VARCHAR(255) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	cameras VARCHAR(2000), 
	created FLOAT NOT NULL, 
	totp_secret VARCHAR(64), 
	totp_pending VARCHAR(64), 
	totp_step INTEGER, 
	UNIQUE (name)
);
INSERT INTO "users" VALUES(1,'ana','$argon2id$v=19$m=65536,t=2,p=2$aM0O8+D8wk8FsQWUVU9Dfw$PYLGvkB1fvUsBeDQoJj2x0J4gzr9/WTKxtq2GUoRxAY','admin',NULL,1.79664990195398664466e+09,NULL,NULL,NULL);
INSERT INTO "users" VALUES(2,'vic','$argon2id$v=19$m=65536,t=2,p=2$wekB3ohc10o9tXnFL7x1ww$u0t71vr3R3CX4xZsNEcXgVjabDSZoaByBNUvzuuj8XE','viewer','door',1.79664990241649293904e+09,'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',NULL,59666666);
CREATE INDEX events_by_label_last_seen_id ON events (label, last_seen, id);
CREATE INDEX ix_events_camera ON events (camera);
CREATE INDEX events_by_camera_last_seen_id ON events (camera, last_seen, id);
CREATE INDEX events_by_last_seen_id ON events (last_seen, id);
CREATE INDEX counts_by_camera_minute ON counts (camera, minute);
CREATE INDEX alerts_by_at_id ON alerts (at, id);
CREATE INDEX ix_sessions_user_id ON sessions (user_id);
CREATE INDEX ix_login_failures_key ON login_failures ("key");
CREATE INDEX ix_login_failures_at ON login_failures (at);
CREATE INDEX ix_access_log_at ON access_log (at);
CREATE INDEX ix_recovery_codes_user_id ON recovery_codes (user_id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('events',6);
INSERT INTO "sqlite_sequence" VALUES('alerts',1);
INSERT INTO "sqlite_sequence" VALUES('users',2);
COMMIT;
