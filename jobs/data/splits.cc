#include "jobs/data/splits.h"

#include <cstdio>
#include <system_error>

#include "common/atomic_file.h"
#include "common/error.h"

namespace tallrec {
namespace fs = std::filesystem;

void write_splits(const fs::path& out_dir, const Splits& splits) {
  // Each file is written to a temporary name first; only when all three are complete are
  // they renamed into place, so an interrupted run never leaves a mix of old and new splits.
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error(out_dir.string() + ": cannot create directory: " + ec.message());
  StagedDirectory staged(out_dir / ".prepare");
  const std::pair<const char*, const std::vector<PromptRecord>*> files[] = {
      {"train.json", &splits.train}, {"valid.json", &splits.valid}, {"test.json", &splits.test}};
  const std::vector<InteractionRecord>* interactions[] = {
      &splits.interactions.train, &splits.interactions.valid, &splits.interactions.test};
  const bool with_interactions = !splits.interactions.train.empty() ||
                                 !splits.interactions.valid.empty() ||
                                 !splits.interactions.test.empty();
  std::vector<fs::path> names;
  for (size_t i = 0; i < 3; ++i) {
    const auto& [name, records] = files[i];
    write_prompt_records(staged.path() / name, *records);
    names.push_back(name);
    if (!with_interactions) continue;
    if (interactions[i]->size() != records->size())
      throw Error(std::string(name) + ": " + std::to_string(records->size()) + " records but " +
                  std::to_string(interactions[i]->size()) + " interaction records");
    names.push_back(interactions_path_for(name));
    write_interaction_records(staged.path() / names.back(), *interactions[i]);
  }
  for (const auto& name : names) {
    fs::rename(staged.path() / name, out_dir / name, ec);
    if (ec) throw Error((out_dir / name).string() + ": cannot move into place: " + ec.message());
  }
}

std::string describe_splits(const Splits& splits) {
  std::string out;
  const std::pair<const char*, const std::vector<PromptRecord>*> parts[] = {
      {"train", &splits.train}, {"valid", &splits.valid}, {"test", &splits.test}};
  for (const auto& [name, records] : parts) {
    size_t yes = 0;
    for (const auto& r : *records) yes += answer_label(r) == 1;
    char line[128];
    std::snprintf(line, sizeof line, "%-5s %6zu records  yes ratio %.4f\n", name, records->size(),
                  records->empty() ? 0.0 : double(yes) / double(records->size()));
    out += line;
  }
  return out;
}

}  // namespace tallrec
