#include "common/python_json.h"

#include "test_paths.h"

namespace tallrec {
namespace {

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

}  // namespace
}  // namespace tallrec
