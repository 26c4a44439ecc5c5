-- token prom: mw_g9lRarJp0qGL7e9yItBXnB3mFT0J4PdyTrg4wUyXdkw
-- token script: mw_xwxbGbaxRhowDmLJDkk4fM5cMn3fkFn72zlTs2Kb4tw
-- session ana: m-0vV8r6C8Hd5NWL2W7k-TWw0hnwHCRZJlFew4x50hM
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
INSERT INTO "api_tokens" VALUES(1,'prom','f5f466e525709d86dbc1af3c416214e4771f058dfdc9b4f7343c5bb020d1082d','read',1.79665158103457975389e+09,NULL,NULL,NULL,NULL);
INSERT INTO "api_tokens" VALUES(2,'script','a8486dd6e437723aadd9708603e3b359d9e7d47b0161d0dab189513154cdfa0f','full',1.79665158103568410878e+09,NULL,1,NULL,NULL);
CREATE TABLE auth_chores (
	chore VARCHAR(64) NOT NULL, 
	done FLOAT NOT NULL, 
	PRIMARY KEY (chore)
);
INSERT INTO "auth_chores" VALUES('unknown_names',1.79665158079638671872e+09);
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
CREATE TABLE sessions (
	token_hash VARCHAR(64) NOT NULL, 
	user_id INTEGER NOT NULL, 
	created FLOAT NOT NULL, 
	last_seen FLOAT NOT NULL, 
	PRIMARY KEY (token_hash)
);
INSERT INTO "sessions" VALUES('d226aaed67ad2734789d12c68e5abe5fd3f04dc18b40defc86e85216cade5984',1,1789999980.0,1789999980.0);
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
INSERT INTO "users" VALUES(1,'ana','$argon2id$v=19$m=65536,t=2,p=2$MDs+3haGH7THM0n6o13hcQ$Gbvexq9Xve+I8Rl14wGSGNDJrLsUfvJ7IBSDxJwQ3jo','admin',NULL,1.79665158091782331461e+09,NULL,NULL,NULL);
INSERT INTO "users" VALUES(2,'vic','$argon2id$v=19$m=65536,t=2,p=2$8re46uqS/6vN/f7sfNi8Kg$Hr7Ur/ZFJzbPptJrFYovXLSQlEf9ROMYUBgWWbETvJI','viewer','door',1.79665158103305172923e+09,'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',NULL,59666666);
CREATE INDEX events_by_last_seen_id ON events (last_seen, id);
CREATE INDEX events_by_camera_last_seen_id ON events (camera, last_seen, id);
CREATE INDEX events_by_label_last_seen_id ON events (label, last_seen, id);
CREATE INDEX ix_events_camera ON events (camera);
CREATE INDEX counts_by_camera_minute ON counts (camera, minute);
CREATE INDEX ix_sessions_user_id ON sessions (user_id);
CREATE INDEX ix_login_failures_key ON login_failures ("key");
CREATE INDEX ix_login_failures_at ON login_failures (at);
CREATE INDEX ix_access_log_at ON access_log (at);
CREATE INDEX ix_recovery_codes_user_id ON recovery_codes (user_id);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('events',6);
INSERT INTO "sqlite_sequence" VALUES('users',2);
COMMIT;
