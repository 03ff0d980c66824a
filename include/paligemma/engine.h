// Public entry point of the PaliGemma engine: load a model directory, generate text for images + prompt.
//
//   auto engine = pg::Engine::load("paligemma2-3b-mix-224");
//   pg::GenerateRequest req;
//   req.images.push_back(pg::decode_image_file("cat.jpg"));
//   req.prompt = "caption en";
//   pg::GenerateResult r = engine->generate(req);
//
// Threads: one Engine serves any number of threads at once. Its model, tokenizer and mask decoder are
// read-only after load, the image-feature cache has its own lock, and each call works in its own KV cache
// and activations; concurrent generate calls give the tokens each would give alone. Each call runs its
// OpenMP work on LoadOptions::threads threads of the calling thread and leaves the caller's OpenMP setting
// as it was. The library prints nothing; what load has to say comes back from load_notes().
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "paligemma/decoding.h"
#include "paligemma/error.h"
#include "paligemma/image.h"
#include "paligemma/tasks.h"

namespace pg {

class PaliGemmaModel;
class Tokenizer;

struct LoadOptions {
  int threads = 0;                // OpenMP threads per call; 0: OpenMP's default (all cores, or OMP_NUM_THREADS)
  bool sliding_window = true;     // Gemma 2 sliding window as transformers applies it; false: none (big_vision)
  bool final_softcap = true;      // apply the config's final logit soft-cap
  // bf16/f16 checkpoints: round activations where transformers does (true) or keep them in float32.
  bool reference_rounding = true;
  // false: fault every weight page in during load (load_s includes it, the first request does not pay
  // for it; skipped with a note in load_notes() when the weights exceed the available memory). true: pages are
  // read from disk on first use, for models larger than memory.
  bool lazy_load = false;
  // true: read the weights into newly allocated memory instead of memory-mapping the files (`--no-mmap`):
  // a copy the size of the weights, no page cache sharing, but full memory speed on hosts where long-cached
  // pages read slowly (docs/benchmarks.md). Not with lazy_load.
  bool copy_weights = false;
  // Image features of recently seen images are kept up to this many bytes and reused when the same image
  // (the same pixels at the model's resolution) comes again, skipping the vision tower; 0: never kept.
  size_t image_cache_bytes = size_t{256} << 20;
  // The mask decoder that turns segmentation output into masks (GenerateResult::objects): this .npz file
  // (big_vision's vae-oid.npz); empty: the model's own (load_model_mask_decoder), or none.
  std::string mask_decoder_path;
};

// The decoding options (DecodingOptions) are the request's own fields: request.max_tokens, request.beams, ...
struct GenerateRequest : DecodingOptions {
  std::vector<ImageRGB8> images;  // one or more (image-major, like NLVR2 pairs or video frames)
  std::string prompt;             // e.g. "caption en", "detect cat ; dog"
  bool keep_logits = false;       // return the logits of every step
  // Polled between decoding steps: true ends the generation with FinishReason::Cancelled, keeping the
  // tokens so far (a client that went away, a user's stop button). Called on the generating thread.
  std::function<bool()> cancelled;
};

struct Timings {
  double queued_s = 0;      // pg::Batch: waiting for a slot (Engine::generate: 0)
  double preprocess_s = 0;  // resize to the model's resolution
  double vision_s = 0;      // normalize + SigLIP + projector (about 0 for images whose features were kept)
  double prefill_s = 0;     // decoder over the prefix, up to the first token
  double ttft_s = 0;        // preprocess + vision + prefill
  double decode_s = 0;      // all later tokens
  double decode_tokens_per_s = 0;
  double total_s = 0;
  std::vector<double> decode_step_s;  // each later token's seconds, from the one before (beam search: per step)
};

struct GenerateResult {
  std::vector<int32_t> prompt_tokens;       // image placeholders, <bos>, prompt, "\n"
  std::vector<int32_t> tokens;              // generated, with the final <eos> if produced
  std::string text;                         // generated text without special tokens
  std::vector<std::vector<float>> logits;   // [tokens][vocab] when keep_logits
  FinishReason finish_reason = FinishReason::MaxTokens;
  float score = 0;                          // beam search: transformers' sequences_scores; otherwise 0
  // decode_objects(text) for the first image's size with the engine's mask decoder: the boxes (and masks) of
  // detection / segmentation output; no objects for other output.
  DecodedObjects objects;
  Timings timings;
};

struct ModelInfo {
  std::string architecture;  // "PaliGemma 1 (Gemma)" or "PaliGemma 2 (Gemma 2)"
  int64_t image_size = 0;
  int64_t image_tokens = 0;  // per image
  int64_t vocab_rows = 0;
  int64_t text_hidden = 0;
  int64_t text_layers = 0;
  int64_t context_length = 0;  // positions for image tokens, prompt and new tokens together
  std::string weight_dtype;
};

class Engine {
 public:
  // Loads (memory-maps) a hub model directory or a quantized .gguf file, and its mask decoder. Throws
  // pg::Error naming the file that is missing or wrong.
  static std::unique_ptr<Engine> load(const std::string& model_dir, const LoadOptions& options = {});
  ~Engine();

  // Throws pg::Error for a request it cannot serve (no image, bad decoding options, a prompt that leaves no
  // room in the model's positions, segmentation masks for a first image over kDefaultMaxImagePixels). on_token sees each token as it is chosen (beam search: none), on the
  // calling thread.
  GenerateResult generate(const GenerateRequest& request,
                          const std::function<void(int32_t token)>& on_token = {}) const;

  // Pixel tensor the vision tower sees for one image: [3, S, S] in [-1, 1].
  std::vector<float> preprocess(const ImageRGB8& image) const;
  // The image resized to the model's resolution, S x S (what preprocess normalizes).
  ImageRGB8 model_input(const ImageRGB8& image) const;
  // The image features (projector output, [image tokens, text hidden]) of an image at the model's
  // resolution: the kept ones when it was seen recently (LoadOptions::image_cache_bytes), else computed now.
  std::shared_ptr<const std::vector<float>> image_features(const ImageRGB8& model_input) const;
  struct ImageCacheStats {
    uint64_t hits = 0;    // image_features answered from the kept features
    uint64_t misses = 0;  // computed
  };
  ImageCacheStats image_cache_stats() const;
  // Prompt ids for `image_count` images and `prompt`.
  std::vector<int32_t> prompt_ids(size_t image_count, const std::string& prompt) const;
  // Text of token ids (special tokens skipped, <loc>/<seg> kept).
  std::string decode(const std::vector<int32_t>& ids) const;

  ModelInfo info() const;
  // The OpenMP thread count each call runs with (LoadOptions::threads, or OpenMP's default at load).
  int threads() const;
  // The mask decoder of GenerateResult::objects; null when there is none (segmentation objects then carry
  // seg codes but no masks, and DecodedObjects::needs_mask_decoder is set).
  const MaskDecoder* mask_decoder() const;
  // Notes of the load a caller may want to show (one line each), e.g. that the weights were not faulted in
  // because they exceed the available memory.
  const std::vector<std::string>& load_notes() const;
  double load_seconds() const;

 private:
  // Batch schedules the network's passes itself.
  friend class Batch;
  const PaliGemmaModel& model() const;
  const Tokenizer& tokenizer() const;
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pg
