// docs/dev/protocol.md's message table against the codec (common/protocol.cc): the same message
// types, and every field the decoder requires named in the type's row. A message or a required
// field added to the code and not to the document (or the other way round) fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "common/protocol.h"
#include "test_paths.h"

namespace tallrec {
namespace {

// "| NAME | direction | body |" rows whose first cell is one upper-case word: name -> row.
std::map<std::string, std::string> message_rows() {
  std::ifstream in(test::source_dir() / "docs" / "dev" / "protocol.md");
  std::map<std::string, std::string> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| ", 0) != 0) continue;
    const size_t end = line.find(" |", 2);
    if (end == std::string::npos) continue;
    const std::string name = line.substr(2, end - 2);
    if (name.empty() || name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)
      continue;
    rows[name] = line;
  }
  return rows;
}

TEST(ProtocolDoc, TheMessageTableNamesEveryTypeTheCodecHas) {
  const auto rows = message_rows();
  std::set<std::string> documented, coded;
  for (const auto& [name, row] : rows) documented.insert(name);
  for (const auto& [name, fields] : message_required_fields()) coded.insert(name);
  EXPECT_EQ(documented, coded);
}

TEST(ProtocolDoc, EveryRequiredFieldIsInItsRow) {
  const auto rows = message_rows();
  for (const auto& [name, fields] : message_required_fields()) {
    auto it = rows.find(name);
    ASSERT_NE(it, rows.end()) << name << " has no row in docs/dev/protocol.md";
    for (const auto& field : fields)
      EXPECT_NE(it->second.find("`" + field + "`"), std::string::npos)
          << name << "'s required field \"" << field
          << "\" is not in its row of docs/dev/protocol.md";
  }
}

TEST(ProtocolDoc, TheGrammarListsEveryType) {
  std::ifstream in(test::source_dir() / "docs" / "dev" / "protocol.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const size_t grammar = doc.find("```abnf");
  ASSERT_NE(grammar, std::string::npos);
  const std::string abnf = doc.substr(grammar, doc.find("```", grammar + 3) - grammar);
  for (const auto& [name, fields] : message_required_fields())
    EXPECT_NE(abnf.find("%s\"" + name + "\""), std::string::npos) << name << " is not in the ABNF";
}

}  // namespace
}  // namespace tallrec
