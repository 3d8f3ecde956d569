// Status -> errno for FUSE replies. See errno_map.h.
#include "fs/errno_map.h"

#include <cerrno>

namespace shardfs::fs {

int ToErrno(const Status& st) {
  // An errno recorded at the syscall (or a POSIX error from MetaStore) goes
  // back unchanged; libfuse logs anything outside 1..4095 as a bad value.
  if (st.err() > 0 && st.err() < 4096) return st.err();
  switch (st.code()) {
    case Code::kOk: return 0;  // callers never pass OK; 0 would mean success
    case Code::kNotFound: return ENOENT;
    case Code::kExists: return EEXIST;
    case Code::kNoSpace: return ENOSPC;
    case Code::kPermissionDenied: return EACCES;
    case Code::kInvalidArgument: return EINVAL;
    case Code::kBusy: return EBUSY;
    case Code::kTimedOut: return ETIMEDOUT;
    case Code::kAborted: return EINTR;
    case Code::kCorruption:     // a bad locator or shard: the data is unreadable
    case Code::kAuthFailed:     // wrong key or tampered shards
    case Code::kUnavailable:    // fewer than k nodes answered
    case Code::kIOError:
      return EIO;
  }
  return EIO;
}

}  // namespace shardfs::fs
