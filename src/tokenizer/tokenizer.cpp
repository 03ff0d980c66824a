#include "tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>

#include <array>

#include "core/file.h"
#include "paligemma/error.h"

namespace pg {

Tokenizer::Tokenizer(const std::string& path) : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  check_regular_file(path, "tokenizer");
  const auto status = sp_->Load(path);
  if (!status.ok())
    throw Error("cannot load tokenizer " + path + ": " + status.ToString() +
                " (a model directory needs the hub's tokenizer.model)");
  size_ = sp_->GetPieceSize();
  bos_ = find_piece("<bos>");
  eos_ = find_piece("<eos>");
  pad_ = find_piece("<pad>");
  unk_ = sp_->unk_id();
  if (bos_ < 0 || eos_ < 0)
    throw Error("tokenizer " + path + " has no <bos>/<eos> pieces; it is not a Gemma/PaliGemma tokenizer");
  loc0_ = find_piece("<loc0000>");
  seg0_ = find_piece("<seg000>");
  // The engine maps <locNNNN>/<segNNN> by offset from the first one: check the ranges are contiguous.
  if (loc0_ >= 0 && (loc0_ + 1023 >= size_ || sp_->IdToPiece(loc0_ + 1023) != "<loc1023>"))
    throw Error("tokenizer " + path + ": <loc0000>..<loc1023> are not consecutive pieces");
  if (seg0_ >= 0 && (seg0_ + 127 >= size_ || sp_->IdToPiece(seg0_ + 127) != "<seg127>"))
    throw Error("tokenizer " + path + ": <seg000>..<seg127> are not consecutive pieces");
}

Tokenizer::~Tokenizer() = default;

int32_t Tokenizer::find_piece(const std::string& piece) const {
  const int id = sp_->PieceToId(piece);
  return (id >= 0 && id < size_ && sp_->IdToPiece(id) == piece) ? id : -1;
}

std::string Tokenizer::piece(int32_t id) const {
  return (id >= 0 && id < size_) ? sp_->IdToPiece(id) : std::string();
}

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  const std::array<std::pair<const char*, int32_t>, 3> specials{{{"<bos>", bos_}, {"<eos>", eos_}, {"<pad>", pad_}}};
  std::vector<int32_t> out;
  size_t pos = 0;
  auto encode_plain = [&](const std::string& chunk) {
    if (chunk.empty()) return;
    std::vector<int> ids;
    const auto status = sp_->Encode(chunk, &ids);
    if (!status.ok()) throw Error("cannot tokenize the prompt: " + status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  };
  while (pos < text.size()) {
    size_t best = std::string::npos;
    const std::pair<const char*, int32_t>* which = nullptr;
    for (const auto& s : specials) {
      if (s.second < 0) continue;
      const size_t at = text.find(s.first, pos);
      if (at < best) best = at, which = &s;
    }
    if (!which) {
      encode_plain(text.substr(pos));
      break;
    }
    encode_plain(text.substr(pos, best - pos));
    out.push_back(which->second);
    pos = best + std::char_traits<char>::length(which->first);
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::vector<int> kept;
  for (int32_t id : ids) {
    if (id < 0 || id >= size_ || id == bos_ || id == eos_ || id == pad_ || id == unk_) continue;
    kept.push_back(id);
  }
  std::string text;
  const auto status = sp_->Decode(kept, &text);
  if (!status.ok()) throw Error("cannot decode tokens: " + status.ToString());
  return text;
}

}  // namespace pg
