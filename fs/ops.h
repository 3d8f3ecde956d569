// The FUSE low-level operations table (ops.cc). userdata is the Volume.
//
// Thread-safety: the callbacks run on libfuse's worker threads.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

namespace shardfs::fs {

const struct fuse_lowlevel_ops& FuseOps();

}  // namespace shardfs::fs
