// PaliGemma's SentencePiece tokenizer (tokenizer.model), with the special ids looked up by piece so
// that vocabularies with other layouts than the released 257152-piece one work too.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace pg {

class Tokenizer {
 public:
  explicit Tokenizer(const std::string& model_path);  // throws pg::Error
  ~Tokenizer();

  // Ids of `text` with no BOS/EOS added. Literal <bos>, <eos> and <pad> become their ids (as the
  // reference tokenizer treats special tokens); <locNNNN> and <segNNN> are single pieces.
  std::vector<int32_t> encode(const std::string& text) const;
  // Text of generated ids, skipping special ones (<bos>, <eos>, <pad>, <unk>) and ids outside the
  // SentencePiece vocabulary (the <image> placeholder, padding rows); loc/seg pieces are kept.
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string piece(int32_t id) const;

  int32_t bos_id() const { return bos_; }
  int32_t eos_id() const { return eos_; }
  int32_t pad_id() const { return pad_; }
  int32_t size() const { return size_; }
  // Id of <loc0000> / <seg000>, or -1 when the vocabulary lacks them.
  int32_t loc0_id() const { return loc0_; }
  int32_t seg0_id() const { return seg0_; }

 private:
  int32_t find_piece(const std::string& piece) const;  // -1 if absent

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  int32_t bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1, size_ = 0, loc0_ = -1, seg0_ = -1;
};

}  // namespace pg
