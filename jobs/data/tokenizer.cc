#include "jobs/data/tokenizer.h"

#include <sentencepiece_processor.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/sha256.h"

namespace tallrec {

struct Tokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
};

Tokenizer::Tokenizer(const std::filesystem::path& model_path) : impl_(std::make_unique<Impl>()) {
  std::string bytes = read_file(model_path);
  auto status = impl_->sp.LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    throw InputError(model_path.string() + ": not a SentencePiece model (" + status.ToString() +
                     ")");
  }
  sha256_ = sha256_hex(bytes);
}

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  auto status = impl_->sp.Encode(text, &ids);
  if (!status.ok()) throw Error("SentencePiece failed to encode text: " + status.ToString());
  return {ids.begin(), ids.end()};
}

int32_t Tokenizer::bos_id() const { return impl_->sp.bos_id(); }
int32_t Tokenizer::eos_id() const { return impl_->sp.eos_id(); }
int32_t Tokenizer::vocab_size() const { return impl_->sp.GetPieceSize(); }
std::string Tokenizer::piece(int32_t id) const { return impl_->sp.IdToPiece(id); }

}  // namespace tallrec
