// Objects as segments + manifest. See object_store.h.
#include "lib/object_store.h"

#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>

#include "lib/log.h"
#include "lib/object_manifest.h"
#include "lib/stripe_lookup.h"

namespace shardfs {
namespace {

// Reads until `n` bytes or EOF; returns the count.
Result<size_t> ReadFull(int fd, uint8_t* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read input");
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

Status WriteFull(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write output");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

void DeleteAll(ClusterClient& client, const std::vector<Locator>& locs) {
  for (const Locator& l : locs) {
    Status st = client.DeleteSegment(l);
    if (!st.ok()) LOG_WARN("cleanup: {}", st.ToString());
  }
}

// Stores `data` (level-0 entries) under as many manifest levels as needed
// and returns the root's locator. Every segment written goes to `written`.
Result<Locator> WriteManifests(ClusterClient& client, ObjectManifest m,
                               std::vector<Locator>* written) {
  const size_t limit = client.config().segment_size;
  for (;;) {
    size_t size = kManifestHeaderSize;
    for (const Locator& l : m.entries) size += ManifestEntrySize(l);
    if (size <= limit) {
      std::string bytes;
      EncodeManifest(m, &bytes);
      ASSIGN_OR_RETURN(Locator root,
                       client.WriteSegment(std::span<const uint8_t>(
                           reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
      written->push_back(root);
      return root;
    }
    if (m.level >= kMaxManifestLevel) return Status::InvalidArgument("object too large");
    // Too big for one segment: split into manifests of this level and
    // list those one level up.
    std::vector<Locator> parents;
    size_t i = 0;
    while (i < m.entries.size()) {
      ObjectManifest part = m;
      part.entries.clear();
      size_t part_size = kManifestHeaderSize;
      while (i < m.entries.size()) {
        const size_t add = ManifestEntrySize(m.entries[i]);
        if (!part.entries.empty() && part_size + add > limit) break;
        part_size += add;
        part.entries.push_back(m.entries[i++]);
      }
      std::string bytes;
      EncodeManifest(part, &bytes);
      ASSIGN_OR_RETURN(Locator loc,
                       client.WriteSegment(std::span<const uint8_t>(
                           reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
      written->push_back(loc);
      parents.push_back(std::move(loc));
    }
    m.entries = std::move(parents);
    ++m.level;
  }
}

// Reads the manifest tree under `root` down to the data segments.
Result<std::vector<Locator>> ExpandManifests(ClusterClient& client, const ObjectManifest& root) {
  std::vector<Locator> current = root.entries;
  for (int level = root.level; level > 0; --level) {
    std::vector<Locator> next;
    for (const Locator& l : current) {
      ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, client.ReadSegment(l));
      ObjectManifest m;
      RETURN_IF_ERROR(DecodeManifest(bytes, &m));
      if (m.level != level - 1 || m.file_size != root.file_size ||
          m.segment_size != root.segment_size || m.segment_count != root.segment_count) {
        return Status::Corruption("object manifest: inner manifest does not match its root");
      }
      for (Locator& e : m.entries) next.push_back(std::move(e));
      if (next.size() > root.segment_count) {
        return Status::Corruption("object manifest: more segments than the root says");
      }
    }
    current = std::move(next);
  }
  return current;
}

}  // namespace

Result<StripeId> ParseObjectId(std::string_view id) {
  auto stripe = StripeId::FromHex(id);
  if (!stripe) {
    return Status::InvalidArgument("malformed object id '" + std::string(id.substr(0, 80)) +
                                   "' (expected 32 hex digits, as printed by put)");
  }
  return *stripe;
}

Result<std::string> PutObject(ClusterClient& client, int fd, ObjectStats* stats) {
  const size_t seg = client.config().segment_size;
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::optional<Locator>> locs;  // by segment index
    size_t done = 0;
    Status first;
  };
  auto shared = std::make_shared<Shared>();
  size_t submitted = 0;
  uint64_t total = 0;
  Status read_error;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      if (!shared->first.ok()) break;  // stop reading once a write failed
      shared->locs.emplace_back();
    }
    std::vector<uint8_t> chunk(seg);
    auto got = ReadFull(fd, chunk.data(), seg);
    if (!got.ok()) {
      read_error = got.status();
      break;
    }
    if (*got == 0) break;
    chunk.resize(*got);
    total += *got;
    const size_t index = submitted++;
    // Blocks while the client has its maximum of segments in flight.
    client.WriteSegmentAsync(std::move(chunk), [shared, index](Result<Locator> r) {
      std::lock_guard<std::mutex> lock(shared->mu);
      if (r.ok()) {
        shared->locs[index] = std::move(r).value();
      } else if (shared->first.ok()) {
        shared->first = r.status().With("segment " + std::to_string(index));
      }
      ++shared->done;
      shared->cv.notify_all();
    });
    if (*got < seg) break;  // EOF
  }
  std::vector<Locator> written;
  Status failure = read_error;
  {
    std::unique_lock<std::mutex> lock(shared->mu);
    shared->cv.wait(lock, [&] { return shared->done == submitted; });
    if (failure.ok()) failure = shared->first;
    for (size_t i = 0; i < submitted; ++i) {
      if (shared->locs[i]) written.push_back(*shared->locs[i]);
    }
  }
  if (failure.ok()) {
    ObjectManifest m;
    m.level = 0;
    m.file_size = total;
    m.segment_size = static_cast<uint32_t>(seg);
    m.segment_count = submitted;
    m.entries = written;
    auto root = WriteManifests(client, std::move(m), &written);
    if (root.ok()) {
      if (stats) *stats = ObjectStats{total, submitted};
      return root->stripe.Hex();
    }
    failure = root.status().With("writing the object manifest");
  }
  DeleteAll(client, written);
  return failure;
}

Status GetObject(ClusterClient& client, std::string_view id, int out_fd, int prefetch,
                 ObjectStats* stats, const ObjectProgress& progress) {
  ASSIGN_OR_RETURN(StripeId stripe, ParseObjectId(id));
  auto root_loc = FindLocator(client, stripe);
  if (!root_loc.ok()) {
    if (root_loc.status().IsNotFound()) {
      return Status::NotFound("object " + std::string(id) +
                              " not found: " + root_loc.status().message());
    }
    return root_loc.status().With("looking up object " + std::string(id));
  }
  auto root_bytes = client.ReadSegment(*root_loc);
  if (!root_bytes.ok()) return root_bytes.status().With("object " + std::string(id) + " manifest");
  ObjectManifest root;
  RETURN_IF_ERROR(DecodeManifest(*root_bytes, &root).With("object " + std::string(id)));
  ASSIGN_OR_RETURN(std::vector<Locator> segments, ExpandManifests(client, root));
  RETURN_IF_ERROR(CheckDataSegments(root, segments));

  // Ordered prefetch: up to `prefetch` segments are being fetched while the
  // oldest is written out.
  std::deque<std::future<Result<std::vector<uint8_t>>>> window;
  size_t next = 0;
  const size_t depth = static_cast<size_t>(std::max(prefetch, 1));
  uint64_t written = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    while (next < segments.size() && window.size() < depth) {
      const Locator* loc = &segments[next++];
      window.push_back(
          std::async(std::launch::async, [&client, loc] { return client.ReadSegment(*loc); }));
    }
    auto data = window.front().get();
    window.pop_front();
    if (!data.ok()) return data.status().With("segment " + std::to_string(i));
    const uint64_t expect = segments[i].sealed_size - kSealOverhead;
    if (data->size() != expect) {
      return Status::Corruption("segment " + std::to_string(i) + " has the wrong size");
    }
    RETURN_IF_ERROR(WriteFull(out_fd, data->data(), data->size()));
    written += data->size();
    if (progress) progress(written, root.file_size);
  }
  if (stats) *stats = ObjectStats{written, segments.size()};
  return Status::OK();
}

Result<std::vector<Locator>> ObjectStripes(ClusterClient& client, std::string_view id) {
  ASSIGN_OR_RETURN(StripeId stripe, ParseObjectId(id));
  ASSIGN_OR_RETURN(Locator root_loc, FindLocator(client, stripe));
  ASSIGN_OR_RETURN(std::vector<uint8_t> root_bytes, client.ReadSegment(root_loc));
  ObjectManifest root;
  RETURN_IF_ERROR(DecodeManifest(root_bytes, &root));
  std::vector<Locator> all{root_loc};
  std::vector<Locator> current = root.entries;
  for (int level = root.level; level > 0; --level) {
    std::vector<Locator> next;
    for (const Locator& l : current) {
      ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, client.ReadSegment(l));
      ObjectManifest m;
      RETURN_IF_ERROR(DecodeManifest(bytes, &m));
      for (Locator& e : m.entries) next.push_back(std::move(e));
      all.push_back(l);
    }
    current = std::move(next);
  }
  all.insert(all.end(), current.begin(), current.end());
  return all;
}

Status DeleteObject(ClusterClient& client, std::string_view id) {
  ASSIGN_OR_RETURN(StripeId stripe, ParseObjectId(id));
  ASSIGN_OR_RETURN(Locator root_loc, FindLocator(client, stripe));
  ASSIGN_OR_RETURN(std::vector<uint8_t> root_bytes, client.ReadSegment(root_loc));
  ObjectManifest root;
  RETURN_IF_ERROR(DecodeManifest(root_bytes, &root));
  // Inner manifests are deleted too: collect them level by level.
  std::vector<Locator> all;
  std::vector<Locator> current = root.entries;
  for (int level = root.level; level > 0; --level) {
    std::vector<Locator> next;
    for (const Locator& l : current) {
      ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, client.ReadSegment(l));
      ObjectManifest m;
      RETURN_IF_ERROR(DecodeManifest(bytes, &m));
      for (Locator& e : m.entries) next.push_back(std::move(e));
      all.push_back(l);
    }
    current = std::move(next);
  }
  all.insert(all.end(), current.begin(), current.end());
  Status first;
  for (const Locator& l : all) {
    Status st = client.DeleteSegment(l);
    if (!st.ok() && first.ok()) first = st;
  }
  Status st = client.DeleteSegment(root_loc);  // last: the id stays usable until the end
  return first.ok() ? st : first;
}

}  // namespace shardfs
