#include "jobs/data/token_cache.h"

#include "common/sha256.h"

namespace tallrec {

std::filesystem::path cached_tokens(const Tokenizer& tokenizer,
                                    const std::filesystem::path& records,
                                    const TokenizeOptions& options,
                                    std::optional<FewShotSubset> subset,
                                    const std::filesystem::path& cache_dir) {
  Sha256 key;
  key.update(sha256_file(records));
  key.update(tokenizer.model_sha256());
  key.update(std::string(prompt_template_name(options.prompt_template)));
  key.update(std::to_string(options.cutoff_len) +
             (options.train_on_inputs ? "/inputs" : "/masked"));
  if (options.special_ids != "llama")  // the default adds nothing: caches made before stay valid
    key.update("/special " + options.special_ids);
  if (subset)
    key.update("/subset " + std::to_string(subset->sample) + " " + std::to_string(subset->seed));
  const std::filesystem::path dir = cache_dir / key.hex_digest().substr(0, 24);
  // The folder appears whole or not at all (write_tokenized stages and renames it).
  if (!std::filesystem::exists(dir / "meta.json"))
    tokenize_file(tokenizer, records, options, subset, dir);
  return dir;
}

}  // namespace tallrec
