#include "worker/prepare_run.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/run_spec.h"
#include "jobs/data/prompt_template.h"
#include "jobs/data/token_cache.h"

namespace tallrec {

std::filesystem::path prepare_run(const nlohmann::json& run, const Tokenizer& tokenizer,
                                  const std::filesystem::path& cache_dir,
                                  const std::filesystem::path& run_dir,
                                  const nlohmann::json& overrides,
                                  const std::atomic<bool>* cancel) {
  try {
    TokenizeOptions options;
    options.cancel = cancel;
    options.cutoff_len = run.at("cutoff_len");
    options.special_ids = run.value("special_ids", options.special_ids);
    // The grid's data axes (common/run_spec.h's grid_axes(); absent: TALLRec's).
    if (run.contains("template"))
      options.prompt_template = parse_prompt_template(run["template"].get<std::string>());
    options.train_on_inputs = run.value("train_on_inputs", options.train_on_inputs);
    auto tokens = [&](const std::string& records, std::optional<FewShotSubset> subset) {
      return cached_tokens(tokenizer, records, options, subset, cache_dir).string();
    };
    // A grid's valid_sample and test_sample: a seeded subset (seed 0, the same for every run).
    auto seeded_subset = [&](const char* key) -> std::optional<FewShotSubset> {
      if (!run.contains(key)) return std::nullopt;
      return FewShotSubset{run[key].get<int64_t>(), 0};
    };
    const std::optional<FewShotSubset> test_subset = seeded_subset("test_sample");
    nlohmann::json tests = nlohmann::json::object();
    for (const auto& [domain, path] : run.at("tests").items())
      tests[domain] = tokens(path, test_subset);
    const std::optional<FewShotSubset> valid_subset = seeded_subset("valid_sample");
    // The grid's own fields, then every hyper-parameter axis at its RunSpec field
    // (common/run_spec.h's grid_axes(): the table the grid took its defaults from).
    nlohmann::json spec = {
        {"base_model", run.at("base_model")},
        {"train_tokens", tokens(run.at("train"), FewShotSubset{run.at("sample"), run.at("seed")})},
        {"valid_tokens", tokens(run.at("valid"), valid_subset)},
        {"test_tokens", tests},
        {"seed", run.at("seed")}};
    if (run.contains("init_adapter")) spec["init_adapter"] = run["init_adapter"];
    if (run.contains("memory_limit_gib")) spec["memory_limit_gib"] = run["memory_limit_gib"];
    apply_grid_axes(run, spec);
    // A GPU slot trains in kGpuDefaultDtype unless the grid chose (common/run_spec.h says why).
    if (!run.contains("dtype") && overrides.value("device", "cpu") != "cpu")
      spec["dtype"] = name_of(kGpuDefaultDtype);
    spec.update(overrides);
    std::filesystem::create_directories(run_dir);
    write_file_atomically(run_dir / "spec.json", spec.dump(2) + "\n");
    return run_dir / "spec.json";
  } catch (const nlohmann::json::exception& e) {
    throw InputError(std::string("run spec from the coordinator is malformed: ") + e.what());
  }
}

}  // namespace tallrec
