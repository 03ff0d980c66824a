// `paligemma batch`: one JSON request per input line, one JSON result per output line, resumable.
//
// The output is the record of what is done: every result line is appended with one write() and fsync()ed
// before the next request starts, so an interrupted run loses at most the request in flight and never
// writes half a result that a rerun would keep. A rerun first drops a trailing partial line (a write cut off
// by a crash), then skips every id that already has a line.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "io/video.h"
#include "paligemma/engine.h"
#include "tasks/detection.h"
#include "tasks/segmentation.h"
#include "tasks/task_prompt.h"

namespace pg::cli {

using nlohmann::json;
using nlohmann::ordered_json;  // result lines keep "id" first
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// A request line that cannot be served; becomes {"id", "error": {"code", "message"}}.
struct RequestError {
  std::string code;
  std::string message;
};

const std::set<std::string> kKeys = {
    "id",   "image",      "images", "video",          "frames",      "prompt", "task",  "objects", "question",
    "lang", "max_tokens", "beams",  "length_penalty", "temperature", "top_k",  "top_p", "seed",    "stop"};

[[noreturn]] void bad_request(const std::string& message) { throw RequestError{"bad_request", message}; }

const json* find(const json& request, const char* key) {
  auto it = request.find(key);
  return it == request.end() ? nullptr : &*it;
}

std::string get_string(const json& request, const char* key) {
  const json* v = find(request, key);
  if (!v) return "";
  if (!v->is_string()) bad_request(std::string("\"") + key + "\" must be a string");
  return v->get<std::string>();
}

int64_t get_int(const json& request, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  const json* v = find(request, key);
  if (!v) return fallback;
  if (!v->is_number_integer() || v->get<int64_t>() < lo || v->get<int64_t>() > hi ||
      (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)))
    bad_request(std::string("\"") + key + "\" must be a whole number from " + std::to_string(lo) + " to " +
                std::to_string(hi));
  return v->get<int64_t>();
}

double get_number(const json& request, const char* key, double fallback) {
  const json* v = find(request, key);
  if (!v) return fallback;
  if (!v->is_number()) bad_request(std::string("\"") + key + "\" must be a number");
  return v->get<double>();
}

std::vector<std::string> get_strings(const json& request, const char* key) {
  const json* v = find(request, key);
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array() || v->empty())
    bad_request(std::string("\"") + key + "\" must be a string or a non-empty array of strings");
  std::vector<std::string> out;
  for (const json& e : *v) {
    if (!e.is_string()) bad_request(std::string("\"") + key + "\" must hold strings only");
    out.push_back(e.get<std::string>());
  }
  return out;
}

// The request's images and prompt text; throws RequestError.
GenerateRequest parse_request(const json& request) {
  if (!request.is_object()) bad_request("a request must be a JSON object");
  for (const auto& [key, value] : request.items())
    if (!kKeys.count(key)) bad_request("unknown key \"" + key + "\"");

  GenerateRequest req;
  const int sources = int(request.contains("image")) + int(request.contains("images")) + int(request.contains("video"));
  if (sources != 1) bad_request("give exactly one of \"image\", \"images\" and \"video\"");
  if (request.contains("frames") && !request.contains("video")) bad_request("\"frames\" applies to \"video\" only");
  if (request.contains("prompt") == request.contains("task"))
    bad_request("give exactly one of \"prompt\" and \"task\"");
  for (const char* key : {"objects", "question", "lang"})
    if (request.contains(key) && !request.contains("task"))
      bad_request(std::string("\"") + key + "\" applies to \"task\" only");

  if (request.contains("prompt")) {
    req.prompt = get_string(request, "prompt");
  } else {
    TaskPromptRequest task;
    task.task = get_string(request, "task");
    task.objects = get_string(request, "objects");
    task.text = get_string(request, "question");
    task.language = get_string(request, "lang");
    try {
      req.prompt = build_task_prompt(task);
    } catch (const Error& e) {
      bad_request(e.what());
    }
  }
  req.max_tokens = get_int(request, "max_tokens", 64, 1, 1 << 20);
  req.beams = int(get_int(request, "beams", 1, 1, 256));
  req.length_penalty = get_number(request, "length_penalty", 1.0);
  req.sample = request.contains("temperature") || request.contains("top_k") || request.contains("top_p");
  if (request.contains("seed") && !req.sample)
    bad_request("\"seed\" applies to sampling only (give \"temperature\", \"top_k\" or \"top_p\")");
  req.temperature = get_number(request, "temperature", 1.0);
  req.top_k = get_int(request, "top_k", 0, 0, int64_t(1) << 31);
  req.top_p = get_number(request, "top_p", 1.0);
  req.seed = uint64_t(get_int(request, "seed", 0, 0, INT64_MAX));
  req.stop = get_strings(request, "stop");
  return req;
}

// Decodes the request's image files (or video frames) into `req`; relative paths are taken from `base_dir`
// (the input file's folder). Throws RequestError.
void load_images(const json& request, const fs::path& base_dir, GenerateRequest& req) {
  const auto resolve = [&](const std::string& path) { return (base_dir / path).string(); };
  try {
    if (request.contains("video")) {
      const int frames = int(get_int(request, "frames", 16, 1, 1024));
      for (VideoFrame& f : sample_video_frames(resolve(get_string(request, "video")), frames))
        req.images.push_back(std::move(f.image));
    } else {
      for (const std::string& path : get_strings(request, request.contains("image") ? "image" : "images"))
        req.images.push_back(decode_image_file(resolve(path)));
    }
  } catch (const Error& e) {
    throw RequestError{"input_error", e.what()};
  }
}

// `vae` may be null: segmentation objects then carry seg_codes but no mask.
ordered_json serve(const Engine& engine, const MaskDecoder* vae, const json& request, const fs::path& base_dir) {
  GenerateRequest req = parse_request(request);
  load_images(request, base_dir, req);
  GenerateResult r;
  try {
    r = engine.generate(req);
  } catch (const Error& e) {
    throw RequestError{"generation_error", e.what()};
  } catch (const std::bad_alloc&) {
    throw RequestError{"generation_error", "out of memory"};
  }
  ordered_json out{{"text", r.text}, {"tokens", r.tokens}, {"finish_reason", r.finish_reason}};
  if (req.beams > 1) out["score"] = r.score;
  // Boxes and masks on the first image, as `generate --json` gives them.
  if (has_loc_tokens(r.text))
    out["objects"] = objects_json(decode_objects(r.text, req.images[0].width, req.images[0].height, vae));
  const Timings& t = r.timings;
  out["timings"] = ordered_json{{"preprocess_s", t.preprocess_s},
                                {"vision_s", t.vision_s},
                                {"prefill_s", t.prefill_s},
                                {"ttft_s", t.ttft_s},
                                {"decode_tokens_per_s", t.decode_tokens_per_s},
                                {"total_s", t.total_s}};
  return out;
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + std::string(what) + " " + path + ": " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

// Ids (as compact JSON text) that already have a result in `path`, after cutting off a partial last line.
std::set<std::string> finished_ids(const std::string& path) {
  std::set<std::string> ids;
  if (!fs::exists(path)) return ids;
  std::string text = read_file(path, "output file");
  if (!text.empty() && text.back() != '\n') {
    const size_t keep = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    if (::truncate(path.c_str(), off_t(keep)) != 0)
      throw Error("cannot cut the partial last line off " + path + ": " + std::strerror(errno));
    std::cerr << "batch: " << path << " ended in a partial line (an interrupted write); removed it\n";
    text.resize(keep);
  }
  const std::vector<std::string> lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (is_blank(lines[i])) continue;
    const json result = json::parse(lines[i], nullptr, false);
    if (!result.is_object() || !result.contains("id"))
      throw Error(path + " line " + std::to_string(i + 1) +
                  " is not a result line of paligemma batch; refusing to append to it (choose another --output)");
    ids.insert(result["id"].dump());
  }
  return ids;
}

// One input line with the id its result carries.
struct Pending {
  size_t line_number;  // 1-based
  json id;
  json request;                       // discarded when `error` is set
  std::optional<RequestError> error;  // known before any model work
};

// The id of each non-blank line: its "id" (a string or whole number) when it parses and that id is new, else
// "#<line number>" (bad JSON, no usable id: an error result; a repeated id: a duplicate_id error result).
// Ids starting with '#' are reserved for these.
std::vector<Pending> read_requests(const std::string& path) {
  std::vector<Pending> out;
  std::set<std::string> seen;
  const std::vector<std::string> lines = split_lines(read_file(path, "input file"));
  for (size_t i = 0; i < lines.size(); ++i) {
    if (is_blank(lines[i])) continue;
    std::string line_id = std::to_string(i + 1);
    line_id.insert(line_id.begin(), '#');  // (not "#" + ...: GCC 12 warns falsely, -Wrestrict)
    Pending p{i + 1, line_id, json(), std::nullopt};
    json request = json::parse(lines[i], nullptr, false);
    if (request.is_discarded()) {
      p.error = RequestError{"bad_json", "line " + std::to_string(i + 1) + " is not valid JSON"};
    } else if (!request.is_object()) {
      p.error = RequestError{"bad_request", "line " + std::to_string(i + 1) + " is not a JSON object"};
    } else if (!request.contains("id") || !(request["id"].is_string() || request["id"].is_number_integer())) {
      p.error =
          RequestError{"bad_request", "line " + std::to_string(i + 1) + " has no \"id\" (a string or whole number)"};
    } else if (request["id"].is_string() && request["id"].get<std::string>().rfind('#', 0) == 0) {
      p.error = RequestError{"bad_request", "line " + std::to_string(i + 1) + ": ids starting with '#' are reserved"};
    } else if (seen.count(request["id"].dump())) {
      p.error =
          RequestError{"duplicate_id", "line " + std::to_string(i + 1) + " repeats the id " + request["id"].dump()};
    } else {
      p.id = request["id"];
      seen.insert(p.id.dump());
      p.request = std::move(request);
    }
    out.push_back(std::move(p));
  }
  return out;
}

// Appends whole lines to the output, each made durable before the next.
class ResultWriter {
 public:
  explicit ResultWriter(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot open " + path + " for appending: " + std::strerror(errno));
  }
  ~ResultWriter() { ::close(fd_); }
  ResultWriter(const ResultWriter&) = delete;
  ResultWriter& operator=(const ResultWriter&) = delete;

  void append(const ordered_json& result) {
    const std::string line = result.dump(-1, ' ', false, ordered_json::error_handler_t::replace) + "\n";
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw Error("cannot write " + path_ + ": " + std::strerror(errno));
      done += size_t(n);
    }
    if (::fsync(fd_) != 0) throw Error("cannot flush " + path_ + " to disk: " + std::strerror(errno));
  }

 private:
  std::string path_;
  int fd_ = -1;
};

std::string clock_text(double seconds) {
  const long s = long(std::lround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// Progress on stderr: a bar redrawn in place on a terminal, otherwise a plain line every 10 seconds.
class Progress {
 public:
  explicit Progress(size_t total) : total_(total), tty_(::isatty(STDERR_FILENO)), t0_(Clock::now()), last_(t0_) {}

  void update(size_t done, size_t errors) {
    const auto now = Clock::now();
    const bool finished = done == total_;
    if (!tty_ && !finished && now - last_ < std::chrono::seconds(10)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - t0_).count();
    const double rate = elapsed > 0 ? double(done) / elapsed : 0;
    std::ostringstream line;
    if (tty_) {
      const int width = 30, filled = int(width * done / std::max<size_t>(total_, 1));
      line << "\r[" << std::string(size_t(filled), '#') << std::string(size_t(width - filled), '.') << "] ";
    } else {
      line << "batch: ";
    }
    line << done << "/" << total_ << " (" << (100 * done / std::max<size_t>(total_, 1)) << "%)";
    char rate_text[32];
    std::snprintf(rate_text, sizeof rate_text, "%.2f", rate);
    line << " " << rate_text << " req/s";
    if (!finished && rate > 0) line << " ETA " << clock_text(double(total_ - done) / rate);
    if (finished) line << " in " << clock_text(elapsed);
    if (errors) line << ", " << errors << (errors == 1 ? " error" : " errors");
    line << (tty_ ? "\033[K" : "\n");
    if (tty_ && finished) line << "\n";
    std::cerr << line.str() << std::flush;
  }

 private:
  size_t total_;
  bool tty_;
  Clock::time_point t0_, last_;
};

}  // namespace

int run_batch(int argc, char** argv) {
  const Args args(argc, argv, 2,
                  {{"--model", true},
                   {"--vae", true},
                   {"--input", true},
                   {"--output", true},
                   {"--threads", true},
                   {"--no-sliding-window", false},
                   {"--no-final-softcap", false},
                   {"--f32-activations", false},
                   {"--no-mmap", false}});
  if (!args.has("--input")) throw UsageError("batch needs --input REQUESTS.jsonl");
  if (!args.has("--output")) throw UsageError("batch needs --output RESULTS.jsonl");
  const std::string input = args.get("--input"), output = args.get("--output");
  std::error_code ec;
  if (fs::exists(output) && fs::equivalent(input, output, ec))
    throw UsageError("--input and --output are the same file");
  LoadOptions lo;
  lo.threads = int(args.get_int("--threads", 0, 1, 1024));
  lo.sliding_window = !args.has("--no-sliding-window");
  lo.final_softcap = !args.has("--no-final-softcap");
  lo.reference_rounding = !args.has("--f32-activations");
  lo.copy_weights = args.has("--no-mmap");

  const std::vector<Pending> requests = read_requests(input);
  const std::set<std::string> done_ids = finished_ids(output);
  std::vector<const Pending*> todo;
  for (const Pending& p : requests)
    if (!done_ids.count(p.id.dump())) todo.push_back(&p);
  const size_t skipped = requests.size() - todo.size();
  if (skipped)
    std::cerr << "batch: " << skipped << " of " << requests.size() << " requests already in " << output << "\n";
  if (todo.empty()) return 0;

  const std::string model_dir = model_dir_from(args), vae_path = vae_path_from(args, model_dir);
  std::unique_ptr<MaskDecoder> vae;
  if (!vae_path.empty()) vae = std::make_unique<MaskDecoder>(vae_path);
  const auto engine = Engine::load(model_dir, lo);
  const fs::path base_dir = fs::absolute(input).parent_path();
  ResultWriter writer(output);
  Progress progress(todo.size());
  size_t errors = 0;
  for (size_t i = 0; i < todo.size(); ++i) {
    const Pending& p = *todo[i];
    ordered_json result{{"id", p.id}};
    try {
      if (p.error) throw *p.error;
      result.update(serve(*engine, vae.get(), p.request, base_dir));
    } catch (const RequestError& e) {
      result["error"] = ordered_json{{"code", e.code}, {"message", e.message}};
      ++errors;
    }
    writer.append(result);
    progress.update(i + 1, errors);
  }
  return 0;
}

}  // namespace pg::cli
