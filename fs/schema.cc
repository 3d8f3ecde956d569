// DDL of the mount's metadata, one migration per entry (METADATA.md §2).
#include "fs/schema.h"

namespace shardfs::fs {

const std::vector<std::string>& MetaMigrations() {
  static const std::vector<std::string> kMigrations = {
      // Migration 1: the initial schema (METADATA.md §2 "Migration 1").
      R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value
);
CREATE TABLE inodes (
  ino INTEGER PRIMARY KEY AUTOINCREMENT,
  generation INTEGER NOT NULL DEFAULT 1,
  mode INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  gid INTEGER NOT NULL,
  nlink INTEGER NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  atime_ns INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  rdev INTEGER NOT NULL DEFAULT 0,
  flags INTEGER NOT NULL DEFAULT 0,
  target BLOB
);
CREATE TABLE dentries (
  cookie INTEGER PRIMARY KEY AUTOINCREMENT,
  parent INTEGER NOT NULL,
  name BLOB NOT NULL,
  ino INTEGER NOT NULL,
  UNIQUE (parent, name)
);
CREATE INDEX dentries_by_ino ON dentries (ino);
CREATE TABLE xattrs (
  ino INTEGER NOT NULL,
  name BLOB NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (ino, name)
) WITHOUT ROWID;
CREATE TABLE segments (
  ino INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  len INTEGER NOT NULL,
  locator BLOB,
  inline_data BLOB,
  staging_id INTEGER,
  seq INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (ino, idx)
) WITHOUT ROWID;
CREATE INDEX segments_by_staging ON segments (staging_id) WHERE staging_id IS NOT NULL;
CREATE TABLE upload_queue (
  ino INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  queued_ns INTEGER NOT NULL,
  PRIMARY KEY (ino, idx)
) WITHOUT ROWID;
CREATE TABLE delete_queue (
  id INTEGER PRIMARY KEY,
  locator BLOB NOT NULL,
  queued_ns INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0
);
)sql",
  };
  return kMigrations;
}

}  // namespace shardfs::fs
