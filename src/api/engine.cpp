#include "paligemma/engine.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "generate/generator.h"
#include "loader/checkpoint.h"
#include "tokenizer/tokenizer.h"
#include "api/image_feature_cache.h"
#include "model/paligemma.h"
#include "core/thread_count.h"
#include "tasks/segmentation.h"
#include "tasks/prompt.h"

namespace pg {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Eos: return "eos";
    case FinishReason::MaxTokens: return "max_tokens";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "max_tokens";
}

struct Engine::Impl {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<PaliGemmaModel> model;
  std::unique_ptr<ImageFeatureCache> image_cache;
  std::shared_ptr<const MaskDecoder> mask_decoder;
  std::vector<std::string> load_notes;
  int threads = 0;
  double load_seconds = 0;
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const std::string& dir, const LoadOptions& options) {
  const auto t0 = Clock::now();
  if (options.lazy_load && options.copy_weights)
    throw Error("lazy loading and copying the weights into memory exclude each other (--lazy-load, --no-mmap)");
  const ScopedThreadCount thread_count(options.threads);
  auto impl = std::make_unique<Impl>();
  impl->threads = omp_get_max_threads();
  // The small decoder first: a wrong --vae is reported before the long part of the load.
  impl->mask_decoder = options.mask_decoder_path.empty() ? load_model_mask_decoder(dir)
                                                         : load_mask_decoder(options.mask_decoder_path);
  impl->checkpoint =
      std::make_unique<Checkpoint>(dir, options.copy_weights ? FileResidency::Copied : FileResidency::Mapped);
  if (!options.lazy_load && !options.copy_weights) {
    const std::string note = impl->checkpoint->prefault_weights();
    if (!note.empty()) impl->load_notes.push_back(note);
  }
  impl->tokenizer = std::make_unique<Tokenizer>(impl->checkpoint->tokenizer_path());
  const PaliGemmaConfig& config = impl->checkpoint->config();
  if (impl->tokenizer->size() > config.text.vocab)
    throw Error("tokenizer.model has " + std::to_string(impl->tokenizer->size()) + " pieces but the model only " +
                std::to_string(config.text.vocab) + " embedding rows: they do not belong together");
  ModelOptions model_options;
  model_options.sliding_window = options.sliding_window;
  model_options.final_softcap = options.final_softcap;
  model_options.reference_rounding = options.reference_rounding;
  impl->model = std::make_unique<PaliGemmaModel>(config, bind_weights(config, impl->checkpoint->lookup()),
                                                 model_options);
  impl->image_cache = std::make_unique<ImageFeatureCache>(options.image_cache_bytes);
  impl->load_seconds = since(t0);
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

std::vector<float> Engine::preprocess(const ImageRGB8& image) const { return normalize_to_chw(model_input(image)); }

ImageRGB8 Engine::model_input(const ImageRGB8& image) const {
  const int64_t S = impl_->model->config().vision.image_size;
  return resize_bicubic_pil(image, int(S), int(S));
}

std::shared_ptr<const std::vector<float>> Engine::image_features(const ImageRGB8& model_input) const {
  const int64_t S = impl_->model->config().vision.image_size;
  if (model_input.width != S || model_input.height != S)
    throw Error("image_features takes an image at the model's resolution (" + std::to_string(S) + "x" +
                std::to_string(S) + "), not " + std::to_string(model_input.width) + "x" +
                std::to_string(model_input.height) + ": pass it through model_input first");
  const ScopedThreadCount thread_count(impl_->threads);
  return impl_->image_cache->get(model_input, [&] {
    return impl_->model->image_embeddings(normalize_to_chw(model_input).data());
  });
}

Engine::ImageCacheStats Engine::image_cache_stats() const {
  const ImageFeatureCache::Stats s = impl_->image_cache->stats();
  return {s.hits, s.misses};
}

std::vector<int32_t> Engine::prompt_ids(size_t image_count, const std::string& prompt) const {
  const PaliGemmaConfig& c = impl_->model->config();
  return build_prompt_ids(*impl_->tokenizer, int32_t(c.image_token_id), int64_t(image_count) * c.vision.tokens(),
                          prompt);
}

std::string Engine::decode(const std::vector<int32_t>& ids) const { return impl_->tokenizer->decode(ids); }

GenerateResult Engine::generate(const GenerateRequest& req, const std::function<void(int32_t)>& on_token) const {
  if (req.images.empty()) throw Error("PaliGemma needs at least one image");
  if (req.max_tokens < 0) throw Error("max_tokens must not be negative");
  check_decoding_options(req, impl_->model->config().text.vocab);
  const ScopedThreadCount thread_count(impl_->threads);
  const auto t_start = Clock::now();
  const PaliGemmaModel& model = *impl_->model;
  GenerateResult r;
  Timings& tm = r.timings;

  auto t0 = Clock::now();
  std::vector<ImageRGB8> inputs;
  for (const ImageRGB8& image : req.images) {
    if (image.width <= 0 || image.height <= 0 || image.pixels.size() != size_t(image.width) * image.height * 3)
      throw Error("an input image is empty or inconsistent (" + std::to_string(image.width) + "x" +
                  std::to_string(image.height) + ")");
    inputs.push_back(model_input(image));
  }
  tm.preprocess_s = since(t0);

  r.prompt_tokens = prompt_ids(req.images.size(), req.prompt);
  // More new tokens than the context has room for stop where it ends (finish_reason "length"), as
  // llama.cpp does; a prompt that leaves no room is an error.
  const int64_t limit = model.config().text.max_positions;
  const int64_t room = limit - int64_t(r.prompt_tokens.size());
  if (room < 1)
    throw Error("the prompt (" + std::to_string(r.prompt_tokens.size()) + " tokens with its images) leaves no room "
                "for a new token in the model's " + std::to_string(limit) +
                " positions; use fewer images or a shorter prompt");

  t0 = Clock::now();
  const std::vector<float> images =
      image_rows([this](const ImageRGB8& input) { return image_features(input); }, inputs);
  tm.vision_s = since(t0);

  const std::vector<float> rows = model.embed_prompt(r.prompt_tokens, images);
  DecodeOptions d;
  static_cast<DecodingOptions&>(d) = req;
  d.keep_logits = req.keep_logits;
  d.context_room = room;
  d.cancelled = req.cancelled;
  const Tokenizer& tokenizer = *impl_->tokenizer;
  if (!req.stop.empty())
    d.stop_check = [&](const std::vector<int32_t>& tokens) {
      return stop_position(tokenizer.decode(tokens), req.stop) != std::string::npos;
    };
  Generation g = generate_tokens(model, rows, int64_t(r.prompt_tokens.size()), {tokenizer.eos_id()}, d, on_token);
  r.tokens = std::move(g.tokens);
  r.logits = std::move(g.logits);
  r.finish_reason = g.finish;
  r.score = g.score;
  r.text = tokenizer.decode(r.tokens);
  r.text = r.text.substr(0, stop_position(r.text, req.stop));
  r.objects = decode_objects(r.text, req.images[0].width, req.images[0].height, impl_->mask_decoder.get());
  tm.prefill_s = g.prefill_seconds;
  tm.ttft_s = tm.preprocess_s + tm.vision_s + tm.prefill_s;
  tm.decode_s = g.decode_seconds;
  tm.decode_step_s = std::move(g.step_seconds);
  tm.decode_tokens_per_s = (r.tokens.size() > 1 && g.decode_seconds > 0) ? double(r.tokens.size() - 1) / g.decode_seconds : 0;
  tm.total_s = since(t_start);
  return r;
}

ModelInfo Engine::info() const {
  const PaliGemmaConfig& c = impl_->model->config();
  ModelInfo i;
  i.architecture = c.text.arch == TextArch::Gemma2 ? "PaliGemma 2 (Gemma 2)" : "PaliGemma 1 (Gemma)";
  i.image_size = c.vision.image_size;
  i.image_tokens = c.vision.tokens();
  i.vocab_rows = c.text.vocab;
  i.text_hidden = c.text.hidden;
  i.text_layers = c.text.layers;
  i.context_length = c.text.max_positions;
  i.weight_dtype = dtype_name(impl_->model->compute_dtype());
  return i;
}

const PaliGemmaModel& Engine::model() const { return *impl_->model; }
const Tokenizer& Engine::tokenizer() const { return *impl_->tokenizer; }

int Engine::threads() const { return impl_->threads; }
const MaskDecoder* Engine::mask_decoder() const { return impl_->mask_decoder.get(); }
const std::vector<std::string>& Engine::load_notes() const { return impl_->load_notes; }

double Engine::load_seconds() const { return impl_->load_seconds; }

}  // namespace pg
