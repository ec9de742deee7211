#include "jobs/data/tokenizer.h"

#include <sentencepiece_processor.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/sha256.h"
#include "jobs/data/tokenizer_json.h"

namespace tallrec {

// One of the two is set.
struct Tokenizer::Impl {
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp;
  std::unique_ptr<JsonTokenizer> json;
};

Tokenizer::Tokenizer(const std::filesystem::path& path_in) : impl_(std::make_unique<Impl>()) {
  std::filesystem::path path = path_in;
  if (std::filesystem::is_directory(path)) {
    if (std::filesystem::exists(path / "tokenizer.model"))
      path /= "tokenizer.model";
    else if (std::filesystem::exists(path / "tokenizer.json"))
      path /= "tokenizer.json";
    else
      throw InputError(path.string() + ": neither tokenizer.model nor tokenizer.json in it");
  }
  if (path.extension() == ".json") {
    impl_->json = std::make_unique<JsonTokenizer>(path);
    sha256_ = sha256_file(path);
    return;
  }
  std::string bytes = read_file(path);
  impl_->sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  auto status = impl_->sp->LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    throw InputError(path.string() + ": not a SentencePiece model (" + status.ToString() + ")");
  }
  sha256_ = sha256_hex(bytes);
}

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  if (impl_->json) return impl_->json->encode(text);
  std::vector<int> ids;
  auto status = impl_->sp->Encode(text, &ids);
  if (!status.ok()) throw Error("SentencePiece failed to encode text: " + status.ToString());
  return {ids.begin(), ids.end()};
}

int32_t Tokenizer::bos_id() const {
  return impl_->json ? impl_->json->bos_id() : impl_->sp->bos_id();
}
int32_t Tokenizer::eos_id() const {
  return impl_->json ? impl_->json->eos_id() : impl_->sp->eos_id();
}
int32_t Tokenizer::vocab_size() const {
  return impl_->json ? impl_->json->vocab_size() : impl_->sp->GetPieceSize();
}
std::string Tokenizer::piece(int32_t id) const {
  return impl_->json ? impl_->json->piece(id) : impl_->sp->IdToPiece(id);
}

}  // namespace tallrec
