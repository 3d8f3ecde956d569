// The one table from Status to the errno the kernel sees (STYLE.md §3).
//
// Thread-safety: pure function.
#pragma once

#include "lib/status.h"

namespace shardfs::fs {

// A positive errno for fuse_reply_err. Never 0 for an error Status.
int ToErrno(const Status& st);

}  // namespace shardfs::fs
