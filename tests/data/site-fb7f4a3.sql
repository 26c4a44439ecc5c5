-- token prom: mw_Amoe6xnL1v7IFuJStwkyUiHXCwaXaAXLsQdw2sLePfA
-- session ana: CW2Byd-blUENGgV2FBNfFCNPwUXZvSHqTJmBgvWkn9A
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
	PRIMARY KEY (id), 
	UNIQUE (name), 
	UNIQUE (token_hash)
);
INSERT INTO "api_tokens" VALUES(1,'prom','fadcf51420aa8a2e3107817ea510120f9ee1da410afefbed926e3914a49069c9','read',1.79648903588806414604e+09,NULL);
CREATE TABLE auth_schema_version (
	version INTEGER NOT NULL
);
INSERT INTO "auth_schema_version" VALUES(1);
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
CREATE TABLE login_failures (
	id INTEGER NOT NULL, 
	"key" VARCHAR(200) NOT NULL, 
	at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE schema_version (
	version INTEGER NOT NULL
);
INSERT INTO "schema_version" VALUES(1);
CREATE TABLE sessions (
	token_hash VARCHAR(64) NOT NULL, 
	user_id INTEGER NOT NULL, 
	created FLOAT NOT NULL, 
	last_seen FLOAT NOT NULL, 
	PRIMARY KEY (token_hash)
);
INSERT INTO "sessions" VALUES('45f5cf975e9abad849cfd19acfff2fc64aa5446abc52bc2f36dee0d81c385e19',1,1789999980.0,1789999980.0);
CREATE TABLE users (
	id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	password_hash VARCHAR(255) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	cameras VARCHAR(2000), 
	created FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
INSERT INTO "users" VALUES(1,'ana','$argon2id$v=19$m=65536,t=2,p=2$qGeMnut+P7j3h8SqFma6dA$lVZI2LLy4TaujaRBsJw3Vi6iNQv7xZiP7jY8gtYcOpU','admin',NULL,1.79648903575165128703e+09);
INSERT INTO "users" VALUES(2,'vic','$argon2id$v=19$m=65536,t=2,p=2$La+AcqqEd+WG7qU9Mz7ZEA$CeJTKUi//N6hEY76wd5a/ZEW96vAkhbG+8ncmer635I','viewer','door',1.79648903588658714293e+09);
CREATE INDEX ix_events_camera ON events (camera);
CREATE INDEX ix_events_last_seen ON events (last_seen);
CREATE INDEX ix_sessions_user_id ON sessions (user_id);
CREATE INDEX ix_login_failures_at ON login_failures (at);
CREATE INDEX ix_login_failures_key ON login_failures ("key");
CREATE INDEX ix_access_log_at ON access_log (at);
COMMIT;
