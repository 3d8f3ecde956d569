// What shardctl's drive commands (sync, cache drop, stat) know about a
// volume's local state without being the mount (fs/METADATA.md §9): where
// the state dir is, whether a mount holds its lease, and read-only queries
// on the mount's meta.db (WAL lets this reader run beside the mount).
//
// Thread-safety: MetaReader belongs to one thread; the functions are pure
// or touch only the file system.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/client_config.h"
#include "lib/crypto.h"
#include "lib/status.h"
#include "tools/commands.h"

namespace shardfs::shardctl {

// A volume as the drive commands see it.
struct DriveVolume {
  ClientConfig cfg;
  Key master{};
  std::string volume_id;  // fs/METADATA.md §1
  std::string state_dir;  // --state, else the mount's default for this key
};

// Loads --config and its key; the state dir follows the mount's rule
// (fs/volume.h DefaultStateDir) unless --state is given.
Result<DriveVolume> LoadDriveVolume(const GlobalOptions& global);

// The pid of the process holding STATE/lease (the running mount), or 0 when
// nobody holds it. Reads /proc/locks, so it never takes the lease itself (a
// mount starting at the same moment is not disturbed).
pid_t LeaseHolder(const std::string& state_dir);

// Where a live shardfs mount of `volume_id` is mounted (fsname
// "shardfs:<id>" in /proc/self/mountinfo), if any.
std::optional<std::string> MountPointOf(const std::string& volume_id);

// The fsname of the mount that holds `path` ("" if unknown).
std::string FsNameOf(const std::string& path);

// One row of the segments table (fs/METADATA.md §2, migration 1).
struct SegmentInfo {
  uint32_t idx = 0;
  uint64_t len = 0;
  std::string locator;  // EncodeLocator bytes, empty if never uploaded
  bool inline_data = false;
  bool staged = false;  // staging_id set: pending upload
};

// Read-only connection to STATE/meta.db. Never writes, never migrates.
class MetaReader {
 public:
  static Result<std::unique_ptr<MetaReader>> Open(const std::string& state_dir);
  ~MetaReader();
  MetaReader(const MetaReader&) = delete;
  MetaReader& operator=(const MetaReader&) = delete;

  struct Pending {
    uint64_t segments = 0;  // rows in upload_queue
    uint64_t bytes = 0;     // their plaintext length
    int64_t oldest_ns = 0;  // queued_ns of the oldest row (0 if none)
    uint64_t deletions = 0;  // rows in delete_queue
  };
  Result<Pending> QueryPending();
  // NotFound if the inode does not exist.
  Result<uint64_t> FileSize(uint64_t ino);
  Result<std::vector<SegmentInfo>> Segments(uint64_t ino);

 private:
  explicit MetaReader(sqlite3* db) : db_(db) {}
  Status Error(const std::string& what) const;
  sqlite3* db_;
};

// "1.5 MiB".
std::string FormatBytes(uint64_t n);

}  // namespace shardfs::shardctl
