// Tests for lib/suspect_nodes: reports appended to the file are summed per
// node (count, first and last time, last reason); malformed lines skipped;
// a missing file is an empty list; no file set means log only.
#include "lib/suspect_nodes.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace shardfs {

TEST_SUITE("suspect_nodes") {
  TEST_CASE("reports are summed per node; junk lines are skipped") {
    std::string dir = (std::filesystem::temp_directory_path() / "shardfs-suspect-XXXXXX").string();
    REQUIRE(::mkdtemp(dir.data()) != nullptr);
    const std::string conf = dir + "/client.conf";
    const std::string path = SuspectNodesFileFor(conf);
    CHECK(path == conf + ".suspects");
    CHECK(SuspectNodesFileFor("").empty());
    auto none = LoadSuspectNodes(path);
    REQUIRE(none.ok());
    CHECK(none->empty());

    SetSuspectNodesFile("");
    const uint64_t before = SuspectReportsInProcess();
    ReportSuspectNode(0x1111, "not recorded in a file");
    CHECK(SuspectReportsInProcess() == before + 1);
    CHECK(!std::filesystem::exists(path));

    SetSuspectNodesFile(path);
    ReportSuspectNode(0xabcdef0123456789ull, "stripe x shard 1: CRC32C mismatch");
    ReportSuspectNode(0xabcdef0123456789ull, "stripe y shard 1: wrong\nshard size");
    ReportSuspectNode(0x42, "forged");
    {
      std::ofstream f(path, std::ios::app);
      f << "garbage line\n12 nothex0000000000 x\n";
    }
    SetSuspectNodesFile("");
    CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::others_read) ==
          std::filesystem::perms::none);
    auto list = LoadSuspectNodes(path);
    REQUIRE(list.ok());
    REQUIRE(list->size() == 2);
    for (const SuspectNode& s : *list) {
      if (s.node == 0x42) {
        CHECK(s.count == 1);
        CHECK(s.last_reason == "forged");
      } else {
        CHECK(s.node == 0xabcdef0123456789ull);
        CHECK(s.count == 2);
        CHECK(s.first_unix <= s.last_unix);
        CHECK(s.last_reason.find('\n') == std::string::npos);
      }
    }
    std::filesystem::remove_all(dir);
  }
}

}  // namespace shardfs
