#include "common/atomic_file.h"

#include <unistd.h>

#include "common/error.h"
#include "test_paths.h"

namespace tallrec {
namespace {

TEST(AtomicFile, ReplacesWholeAndLeavesNoTemporary) {
  test::ScratchDir dir;
  write_file_atomically(dir / "f.txt", "first");
  write_file_atomically(dir / "f.txt", "second");
  EXPECT_EQ(read_file(dir / "f.txt"), "second");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
  EXPECT_THROW(read_file(dir / "missing"), InputError);
}

TEST(StagedDirectory, NothingAppearsUnlessCommitted) {
  test::ScratchDir dir;
  {
    StagedDirectory staged(dir / "out");
    write_file_atomically(staged.path() / "a", "x");
  }  // abandoned, as when an exception unwinds
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 0);
  {
    StagedDirectory staged(dir / "out");
    write_file_atomically(staged.path() / "a", "new");
    staged.commit();
  }
  EXPECT_EQ(read_file(dir / "out" / "a"), "new");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

}  // namespace
}  // namespace tallrec
