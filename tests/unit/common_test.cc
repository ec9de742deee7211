#include <unistd.h>

#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/python_json.h"
#include "common/sha256.h"
#include "common/text_encoding.h"
#include "test_paths.h"

namespace tallrec {
namespace {

TEST(Sha256, MatchesKnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // hashlib.sha256(b"a" * 1000): crosses block boundaries and the 56-byte padding edge.
  EXPECT_EQ(sha256_hex(std::string(1000, 'a')),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 3000; ++i) data += char(i * 7);
  for (size_t split : {0, 1, 55, 56, 63, 64, 65, 2999}) {
    Sha256 h;
    h.update(data.substr(0, split));
    h.update(data.substr(split));
    EXPECT_EQ(h.hex_digest(), sha256_hex(data)) << split;
  }
}

TEST(PythonJson, EscapesLikeJsonDumpEnsureAscii) {
  std::string out;
  append_python_json_string(out,
                            "a\"b\\c\nd\te\x01/\x7f"
                            "\xc3\xa9"
                            "\xe2\x82\xac"
                            "\xf0\x9f\x98\x80");
  // Python: json.dumps('a"b\\c\nd\te\x01/\x7fé€😀')
  EXPECT_EQ(out, R"("a\"b\\c\nd\te\u0001/\u007f\u00e9\u20ac\ud83d\ude00")");
}

TEST(PythonJson, IndentsLikePython) {
  nlohmann::ordered_json doc = nlohmann::ordered_json::array();
  doc.push_back({{"instruction", "x"}, {"n", 3}, {"empty", nlohmann::ordered_json::array()}});
  // json.dumps([{"instruction": "x", "n": 3, "empty": []}], indent=4)
  EXPECT_EQ(python_json_dumps(doc),
            "[\n    {\n        \"instruction\": \"x\",\n        \"n\": 3,\n        \"empty\": []\n "
            "   }\n]");
  EXPECT_EQ(python_json_dumps(nlohmann::ordered_json::array()), "[]");
}

TEST(TextEncoding, Latin1AndUtf8Detection) {
  EXPECT_EQ(latin1_to_utf8("caf\xe9"), "caf\xc3\xa9");
  EXPECT_EQ(find_invalid_utf8("caf\xe9"), 3u);
  EXPECT_EQ(find_invalid_utf8("caf\xc3\xa9"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("\xed\xa0\x80"), 0u);  // a UTF-16 surrogate is not UTF-8
  EXPECT_TRUE(looks_like_utf8_multibyte("caf\xc3\xa9"));
  EXPECT_FALSE(looks_like_utf8_multibyte("caf\xe9"));
  EXPECT_FALSE(looks_like_utf8_multibyte("plain ascii"));
}

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
