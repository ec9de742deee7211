#include "worker/prepare_baseline_run.h"

#include "common/atomic_file.h"
#include "common/baseline_spec.h"
#include "common/error.h"
#include "jobs/data/baseline_inputs.h"
#include "jobs/data/few_shot.h"
#include "jobs/data/prompt_record.h"

namespace tallrec {
namespace fs = std::filesystem;

namespace {

std::vector<InteractionRecord> read_beside(const std::string& prompt_file) {
  std::vector<int> labels;
  for (const auto& r : read_prompt_records(prompt_file)) labels.push_back(answer_label(r));
  return read_interactions_behind(prompt_file, labels);
}

std::vector<InteractionRecord> subset(const std::vector<InteractionRecord>& all,
                                      std::optional<std::pair<int64_t, uint64_t>> sample_seed) {
  if (!sample_seed) return all;
  std::vector<InteractionRecord> out;
  for (size_t i : few_shot_indices(all.size(), sample_seed->first, sample_seed->second))
    out.push_back(all[i]);
  return out;
}

}  // namespace

bool is_baseline_run(const nlohmann::json& run) {
  return spec_method(run, "run spec from the coordinator") != Method::kLlm;
}

fs::path prepare_baseline_run(const nlohmann::json& run, const fs::path& run_dir,
                              const nlohmann::json& overrides) {
  try {
    const std::vector<InteractionRecord> train = read_beside(run.at("train"));
    const std::vector<InteractionRecord> valid = read_beside(run.at("valid"));
    std::map<std::string, std::vector<InteractionRecord>> tests;
    for (const auto& [domain, path] : run.at("tests").items()) tests[domain] = read_beside(path);

    // The domain's own files name its users and items; a test set of another domain adds its own
    // (a cross-domain test then scores items the model never saw, as an LLM run would).
    std::vector<const std::vector<InteractionRecord>*> vocabulary = {&train, &valid};
    for (const auto& [domain, records] : tests) vocabulary.push_back(&records);
    const InteractionEncoder encoder(vocabulary, int64_t(kTallrecHistoryLength));

    // The same records as the LLM's prompts: the few-shot subset of the run's sample and seed,
    // and the grid's valid_sample / test_sample subsets with seed 0 (worker/prepare_run.cc).
    auto seeded = [&](const char* key) -> std::optional<std::pair<int64_t, uint64_t>> {
      if (!run.contains(key)) return std::nullopt;
      return std::pair<int64_t, uint64_t>{run[key].get<int64_t>(), 0};
    };
    BaselineInputs inputs;
    inputs.items = encoder.items();
    inputs.users = encoder.users();
    inputs.max_history = encoder.max_history();
    inputs.train =
        encoder.encode(subset(train, std::pair<int64_t, uint64_t>{run.at("sample").get<int64_t>(),
                                                                  run.at("seed").get<uint64_t>()}),
                       interactions_path_for(run.at("train").get<std::string>()).string());
    inputs.valid =
        encoder.encode(subset(valid, seeded("valid_sample")),
                       interactions_path_for(run.at("valid").get<std::string>()).string());
    for (const auto& [domain, records] : tests)
      inputs.tests[domain] = encoder.encode(
          subset(records, seeded("test_sample")),
          interactions_path_for(run.at("tests").at(domain).get<std::string>()).string());

    fs::create_directories(run_dir);
    write_file_atomically(run_dir / "baseline_inputs.json",
                          baseline_inputs_json(inputs).dump() + "\n");
    BaselineSpec spec = baseline_spec_of_run(run, (run_dir / "baseline_inputs.json").string());
    if (overrides.contains("threads")) spec.threads = overrides["threads"].get<int>();
    write_file_atomically(run_dir / "spec.json", baseline_spec_json(spec).dump(2) + "\n");
    return run_dir / "spec.json";
  } catch (const nlohmann::json::exception& e) {
    throw InputError(std::string("run spec from the coordinator is malformed: ") + e.what());
  }
}

}  // namespace tallrec
