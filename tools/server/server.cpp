#include "server.h"

#include "metrics.h"
#include "request.h"

#include <httplib.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <utility>

#include "../common/objects_json.h"
#include "paligemma/batch.h"
#include "paligemma/tasks.h"

namespace pg::server {

using nlohmann::json;

extern const char* const kPageHtml;  // page.html, embedded by CMake

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(dump({{"error", {{"code", code}, {"message", message}}}}), "application/json");
}

// ---------------------------------------------------------------------------------------------------
// Running a request

// Tokens flowing from the batch's worker thread to the HTTP thread of one request.
struct Channel {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<int32_t> tokens;
  bool done = false;
  GenerateResult result;  // once done
  std::string error;
  std::atomic<bool> cancelled{false};
  std::vector<std::string> stops;
  int image_width = 0, image_height = 0;  // of the first image: boxes and masks are in its pixels
};

// The part of `text` a client may already be shown: cut before a stop string; while generation goes on,
// also without a tail that may still become a stop string or is an incomplete UTF-8 character (the
// tokenizer shows those as U+FFFD until the next byte arrives).
std::string visible_text(const std::string& text, const std::vector<std::string>& stops, bool final) {
  const size_t stop = stop_position(text, stops);
  if (stop != std::string::npos) return text.substr(0, stop);
  if (final) return text;
  size_t keep = text.size();
  for (const auto& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > 0; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        keep = std::min(keep, text.size() - n);
        break;
      }
  static const std::string replacement = "\xEF\xBF\xBD";
  while (keep >= 3 && text.compare(keep - 3, 3, replacement) == 0) keep -= 3;
  return text.substr(0, keep);
}

class Service {
 public:
  Service(const Engine& engine, const MaskDecoder* mask_decoder, const Options& options)
      : engine_(engine),
        mask_decoder_(mask_decoder),
        options_(options),
        metrics_({options.model_name, engine.info().architecture, engine.info().weight_dtype, engine.info().image_size}),
        batch_(engine, BatchOptions{options.limits.max_queue, options.limits.max_batch}) {}

  // Queues the request; throws HttpError (400 for prompts the model cannot take, 503 when full).
  std::shared_ptr<Channel> submit(const Ask& ask) {
    size_t prompt_tokens = 0;
    try {
      prompt_tokens = engine_.prompt_ids(ask.request.images.size(), ask.request.prompt).size();
    } catch (const Error& e) {
      throw HttpError{400, "invalid_prompt", e.what()};
    }
    const int64_t limit = engine_.info().context_length;
    if (int64_t(prompt_tokens) >= limit)
      throw HttpError{400, "too_long", "the images and prompt (" + std::to_string(prompt_tokens) +
                                           " tokens) fill the model's " + std::to_string(limit) + " positions"};
    auto channel = std::make_shared<Channel>();
    channel->stops = ask.request.stop;
    channel->image_width = ask.request.images[0].width;
    channel->image_height = ask.request.images[0].height;
    GenerateRequest req = ask.request;
    req.cancelled = [channel] { return channel->cancelled.load(); };
    BatchCallbacks callbacks;
    callbacks.on_token = [channel](int32_t token) {
      std::lock_guard<std::mutex> lock(channel->mutex);
      channel->tokens.push_back(token);
      channel->changed.notify_all();
    };
    callbacks.on_done = [channel, this](GenerateResult r, const std::string& error) {
      // Counted before the answer can be sent, so that a scrape after it sees this generation.
      metrics_.add_generated_tokens(r.tokens.size());
      if (!r.tokens.empty()) metrics_.observe_time_to_first_token(r.timings.ttft_s);
      std::lock_guard<std::mutex> lock(channel->mutex);
      channel->tokens = r.tokens;
      channel->result = std::move(r);
      channel->error = error;
      channel->done = true;
      channel->changed.notify_all();
    };
    bool queued = false;
    try {
      queued = batch_.submit(req, std::move(callbacks));
    } catch (const Error& e) {
      throw HttpError{400, "invalid_field", e.what()};
    }
    if (!queued)
      throw HttpError{503, "busy", "the server's queue is full (" + std::to_string(options_.limits.max_queue) +
                                       " waiting requests); retry shortly"};
    metrics_.add_prompt_tokens(prompt_tokens);
    return channel;
  }

  // The final answer for a finished channel, in the /v1/generate shape.
  json result(const Channel& c) const {
    const GenerateResult& r = c.result;
    const Timings& t = r.timings;
    json out{{"text", r.text},
             {"tokens", r.tokens},
             {"finish_reason", finish_reason_name(r.finish_reason)},
             {"timings",
              {{"queued_s", t.queued_s}, {"vision_s", t.vision_s}, {"prefill_s", t.prefill_s}, {"decode_s", t.decode_s}}}};
    // Detection / segmentation output as boxes and masks, like `paligemma generate --json`.
    if (has_loc_tokens(r.text))
      out["objects"] = objects_json(decode_objects(r.text, c.image_width, c.image_height, mask_decoder_));
    return out;
  }

  const Engine& engine() const { return engine_; }
  const Options& options() const { return options_; }
  Metrics& metrics() { return metrics_; }
  std::string metrics_text() const {
    const BatchStats stats = batch_.stats();
    const Engine::ImageCacheStats cache = engine_.image_cache_stats();
    return metrics_.render({stats.queued, stats.running, stats.finished, stats.cancelled, stats.prefill_s,
                            stats.decode_s, stats.decode_tokens, cache.hits, cache.misses});
  }
  json health() const {
    const BatchStats stats = batch_.stats();
    const Engine::ImageCacheStats cache = engine_.image_cache_stats();
    return json{{"status", "ok"},
                {"running", stats.running},
                {"queued", stats.queued},
                {"finished", stats.finished},
                {"cancelled", stats.cancelled},
                {"work", {{"prefill_s", stats.prefill_s}, {"decode_s", stats.decode_s},
                          {"decode_tokens", stats.decode_tokens}}},
                {"image_cache", {{"hits", cache.hits}, {"misses", cache.misses}}}};
  }

 private:
  const Engine& engine_;
  const MaskDecoder* mask_decoder_;  // null: segmentation answers carry boxes only
  const Options& options_;
  Metrics metrics_;  // before batch_: the batch's last callbacks, at its destruction, still count
  Batch batch_;
};

// ---------------------------------------------------------------------------------------------------
// HTTP

// The request being served on this thread, for its log line: cpp-httplib runs a request's routing, its
// content provider and the logger on the thread that read it.
struct RequestLog {
  std::chrono::steady_clock::time_point start;  // when routing began; default: the request never got there
  int64_t tokens = -1;                          // generated; -1: no generation
};
thread_local RequestLog request_log;

// Waits until the channel has more than `seen` tokens or is done, at most `timeout`.
void wait_for_progress(Channel& c, size_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(c.mutex);
  c.changed.wait_for(lock, timeout, [&] { return c.done || c.tokens.size() > seen; });
}

enum class Api { Generate, Chat };

// What a chat completion's answer carries besides the generation.
struct ChatReply {
  std::string id;
  int64_t created;
  std::string model;
  size_t prompt_tokens;
  bool include_usage;  // streaming: every chunk has "usage", null but in a last chunk without choices
  json notes;          // what the request held that was left out (an extra field, "notes"); null: nothing
};

// OpenAI's finish_reason: "length" for a token limit, the request's or the context's; "stop" otherwise.
std::string chat_finish_reason(const json& result) {
  const std::string reason = result["finish_reason"];
  return reason == "max_tokens" || reason == "length" ? "length" : "stop";
}

json usage_json(const ChatReply& chat, size_t completion_tokens) {
  return json{{"prompt_tokens", chat.prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", chat.prompt_tokens + completion_tokens}};
}

json chat_object(const json& result, const ChatReply& chat) {
  json out{{"id", chat.id},
           {"object", "chat.completion"},
           {"created", chat.created},
           {"model", chat.model},
           {"choices", json::array({{{"index", 0},
                                     {"message", {{"role", "assistant"}, {"content", result["text"]}}},
                                     {"finish_reason", chat_finish_reason(result)}}})},
           {"usage", usage_json(chat, result["tokens"].size())}};
  if (result.contains("objects")) out["objects"] = result["objects"];  // the structured boxes and masks, an extra field
  if (!chat.notes.is_null()) out["notes"] = chat.notes;
  return out;
}

json chat_chunk(const ChatReply& chat, const json& choices) {
  json out{{"id", chat.id},
           {"object", "chat.completion.chunk"},
           {"created", chat.created},
           {"model", chat.model},
           {"choices", choices}};
  if (chat.include_usage) out["usage"] = nullptr;
  return out;
}

json chat_choice(const json& delta, const json& finish_reason) {
  return json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish_reason}}});
}

// Sends the answer of a queued request: one JSON object, or server-sent events when streaming. The body
// is produced while the request runs, so that a client that goes away is noticed (a failed write) and
// its generation cancelled; a non-streaming answer sends JSON whitespace while waiting to find out.
//
// A content provider runs after the handler has returned, outside cpp-httplib's exception handling, where an
// exception would end the process: `provider_guard` turns one into an error in the answer's own format (the
// JSON body may follow the whitespace already sent) and ends the answer.
template <typename Provider>
auto provider_guard(Provider provider, bool event_stream) {
  return [provider, event_stream](size_t offset, httplib::DataSink& sink) {
    std::string message;
    try {
      return provider(offset, sink);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
      message = "an unknown failure";
    }
    const std::string error = dump({{"error", {{"code", "internal_error"}, {"message", message}}}});
    const std::string text = event_stream ? "event: error\ndata: " + error + "\n\n" : error + "\n";
    sink.write(text.data(), text.size());
    sink.done();
    return true;
  };
}

// Seconds since this thread's request began routing.
double request_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - request_log.start).count();
}

void respond(Service& service, std::shared_ptr<Channel> channel, httplib::Response& res, Api api, const Ask& ask,
             size_t prompt_tokens) {
  const std::string path = api == Api::Generate ? "/v1/generate" : "/v1/chat/completions";
  const bool stream = ask.stream;
  ChatReply chat{"chatcmpl-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()),
                 int64_t(std::time(nullptr)), service.options().model_name, prompt_tokens, ask.include_usage, nullptr};
  if (ask.ignored_system_messages)
    chat.notes = json::array({std::to_string(ask.ignored_system_messages) + " system message(s) ignored: "
                              "PaliGemma takes no system prompt"});
  const Engine& engine = service.engine();
  Service* svc = &service;
  if (!stream) {
    res.set_chunked_content_provider("application/json", provider_guard([=](size_t, httplib::DataSink& sink) {
      for (;;) {
        wait_for_progress(*channel, SIZE_MAX, std::chrono::milliseconds(2000));
        std::lock_guard<std::mutex> lock(channel->mutex);
        if (channel->done) break;
        if (!sink.write(" ", 1)) {
          channel->cancelled = true;
          return false;
        }
      }
      json body;
      if (!channel->error.empty()) {
        body = {{"error", {{"code", "generation_failed"}, {"message", channel->error}}}};
      } else {
        body = svc->result(*channel);
        if (api == Api::Chat) body = chat_object(body, chat);
      }
      request_log.tokens = int64_t(channel->tokens.size());
      svc->metrics().observe_request_duration(path, request_seconds());
      const std::string text = dump(body) + "\n";
      sink.write(text.data(), text.size());
      sink.done();
      return true;
    }, false));
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", provider_guard([=, &engine](size_t, httplib::DataSink& sink) {
    auto send = [&](const std::string& event) {
      if (sink.write(event.data(), event.size())) return true;
      channel->cancelled = true;
      return false;
    };
    if (api == Api::Chat) {
      json first = chat_chunk(chat, chat_choice({{"role", "assistant"}, {"content", ""}}, nullptr));
      if (!chat.notes.is_null()) first["notes"] = chat.notes;
      if (!send("data: " + dump(first) + "\n\n")) return false;
    }
    size_t seen = 0;
    std::string sent;
    for (;;) {
      wait_for_progress(*channel, seen, std::chrono::milliseconds(2000));
      std::vector<int32_t> tokens;
      bool done;
      {
        std::lock_guard<std::mutex> lock(channel->mutex);
        tokens = channel->tokens;
        done = channel->done;
      }
      if (tokens.size() == seen && !done) {
        if (!send(": waiting\n\n")) return false;  // an SSE comment: keeps the connection honest
        continue;
      }
      // Each event carries the text its own token made visible, also when several tokens arrived together
      // (text held back for an incomplete character or a possible stop string comes with a later token).
      for (size_t i = seen; i < tokens.size(); ++i) {
        const bool last = i + 1 == tokens.size();
        const std::vector<int32_t> upto(tokens.begin(), tokens.begin() + long(i + 1));
        const std::string visible = visible_text(engine.decode(upto), channel->stops, done && last);
        const std::string piece = visible.compare(0, sent.size(), sent) == 0 ? visible.substr(sent.size()) : "";
        sent += piece;
        std::string event;
        if (api == Api::Generate) {
          event = "event: token\ndata: " + dump({{"token", tokens[i]}, {"text", piece}}) + "\n\n";
        } else if (!piece.empty()) {
          event = "data: " + dump(chat_chunk(chat, chat_choice({{"content", piece}}, nullptr))) + "\n\n";
        }
        if (!event.empty() && !send(event)) return false;
      }
      seen = tokens.size();
      if (!done) continue;
      std::string end;
      if (!channel->error.empty()) {
        end = "event: error\ndata: " + dump({{"error", {{"code", "generation_failed"}, {"message", channel->error}}}}) + "\n\n";
      } else if (api == Api::Generate) {
        end = "event: done\ndata: " + dump(svc->result(*channel)) + "\n\n";
      } else {
        const json result = svc->result(*channel);
        end = "data: " + dump(chat_chunk(chat, chat_choice(json::object(), chat_finish_reason(result)))) + "\n\n";
        if (chat.include_usage) {
          json usage = chat_chunk(chat, json::array());
          usage["usage"] = usage_json(chat, result["tokens"].size());
          end += "data: " + dump(usage) + "\n\n";
        }
        end += "data: [DONE]\n\n";
      }
      request_log.tokens = int64_t(tokens.size());
      svc->metrics().observe_request_duration(path, request_seconds());
      send(end);
      sink.done();
      return true;
    }
  }, true));
}

json models_json(const Engine& engine, const std::string& name) {
  const ModelInfo i = engine.info();
  return json{{"object", "list"},
              {"data",
               json::array({{{"id", name},
                             {"object", "model"},
                             {"owned_by", "paligemma.cpp"},
                             {"architecture", i.architecture},
                             {"resolution", i.image_size},
                             {"image_tokens", i.image_tokens},
                             {"dtype", i.weight_dtype},
                             {"vocab_rows", i.vocab_rows}}})}};
}

// The thread that waits for SIGINT/SIGTERM. Threads started before serve() (OpenMP's pool, started while
// the model loads) do not block those signals and the kernel may deliver one to them: this handler
// forwards it to the waiting thread instead of letting it end the process.
pthread_t stop_signal_waiter;
void forward_stop_signal(int sig) { pthread_kill(stop_signal_waiter, sig); }

}  // namespace

std::string bind_problem(const std::string& host, int port) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
    return "not an address of this machine";
  int error = 0;
  const int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  if (fd < 0) {
    error = errno;
  } else {
    // The options serve() binds with: SO_REUSEADDR alone, with which Linux refuses a port that is listened on.
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0) error = errno;
    close(fd);
  }
  freeaddrinfo(found);
  if (error == EADDRINUSE) return "port " + std::to_string(port) + " is in use";
  if (error == EADDRNOTAVAIL) return "not an address of this machine";
  return error ? std::strerror(error) : "";
}

int serve(const Engine& engine, const MaskDecoder* mask_decoder, const Options& options) {
  // SIGINT/SIGTERM are taken by one thread (sigwait) that stops the server; other threads never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Service service(engine, mask_decoder, options);
  httplib::Server http;
  const Limits& limits = options.limits;
  const size_t workers = std::max<size_t>(16, limits.max_queue + limits.max_batch + 8);
  http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  http.set_payload_max_length(limits.max_body_bytes);

  http.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    request_log = {std::chrono::steady_clock::now(), -1};
    if (options.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (auth == "Bearer " + options.api_key) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, 401, "unauthorized",
               auth.empty() ? "this server needs \"Authorization: Bearer <key>\"" : "wrong API key");
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      send_error(res, 404, "not_found", "no such endpoint; see GET / for the API");
    } else if (res.status == 413 && req.get_header_value("Content-Type").find("x-www-form-urlencoded") != std::string::npos) {
      // cpp-httplib caps form-encoded bodies at 8 KiB whatever the server's limit (curl -d sends that type).
      send_error(res, 413, "body_too_large", "form-encoded bodies are limited to 8 KiB: send JSON with "
                                             "\"Content-Type: application/json\" or multipart/form-data");
    } else if (res.status == 413) {
      send_error(res, 413, "body_too_large", "the request body is over the server's limit of " +
                                                 std::to_string(limits.max_body_bytes >> 20) + " MiB");
    } else {
      send_error(res, res.status, "bad_request", "the request could not be read");
    }
  });
  std::atomic<uint64_t> requests{0};
  std::mutex log_mutex;
  http.set_logger([&](const httplib::Request& req, const httplib::Response& res) {
    ++requests;
    const RequestLog log = std::exchange(request_log, RequestLog{});
    if (options.quiet) return;
    const bool timed = log.start != std::chrono::steady_clock::time_point{};
    const std::string line =
        "paligemma: " + req.method + " " + req.path + " " + std::to_string(res.status) + " " +
        (log.tokens < 0 ? std::string("-") : std::to_string(log.tokens)) + " tokens " +
        (timed ? std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - log.start).count())
               : std::string("-")) +
        " ms\n";
    std::lock_guard<std::mutex> lock(log_mutex);
    std::fputs(line.c_str(), stderr);
  });
  // Runs once the answer's status is final (after the error handler) and before any of it is sent: a client
  // that scrapes /metrics after an answer sees it counted.
  http.set_post_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    service.metrics().count_request(req.path, res.status);
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, 500, "internal_error", "the server failed on this request");
  });

  auto guarded = [&](auto body) {
    return [&, body](const httplib::Request& req, httplib::Response& res) {
      try {
        body(req, res);
      } catch (const HttpError& e) {
        if (e.status == 503) res.set_header("Retry-After", "1");
        send_error(res, e.status, e.code, e.message);
      }
    };
  };
  auto not_allowed = [](const std::string& allow) {
    return [allow](const httplib::Request&, httplib::Response& res) {
      res.set_header("Allow", allow);
      send_error(res, 405, "method_not_allowed", "use " + allow + " for this endpoint");
    };
  };

  http.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content(kPageHtml, "text/html; charset=utf-8"); });
  http.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump(service.health()), "application/json");
  });
  http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(service.metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump(models_json(engine, options.model_name)), "application/json");
  });
  http.Post("/v1/generate", guarded([&](const httplib::Request& req, httplib::Response& res) {
    const Ask ask = req.is_multipart_form_data() ? parse_generate_multipart(req, limits) : parse_generate_json(req.body, limits);
    auto channel = service.submit(ask);
    respond(service, channel, res, Api::Generate, ask, 0);
  }));
  http.Post("/v1/chat/completions", guarded([&](const httplib::Request& req, httplib::Response& res) {
    const Ask ask = parse_chat(req.body, limits);
    const size_t prompt_tokens = engine.prompt_ids(ask.request.images.size(), ask.request.prompt).size();
    auto channel = service.submit(ask);
    respond(service, channel, res, Api::Chat, ask, prompt_tokens);
  }));
  for (const char* path : {"/v1/generate", "/v1/chat/completions"}) {
    http.Get(path, not_allowed("POST"));
    http.Put(path, not_allowed("POST"));
    http.Delete(path, not_allowed("POST"));
    http.Patch(path, not_allowed("POST"));
  }
  for (const char* path : {"/", "/health", "/metrics", "/v1/models"}) {
    http.Post(path, not_allowed("GET"));
    http.Put(path, not_allowed("GET"));
    http.Delete(path, not_allowed("GET"));
    http.Patch(path, not_allowed("GET"));
  }

  // Not cpp-httplib's default options: they add SO_REUSEPORT, with which a second server binds a busy port
  // and the kernel splits the connections between the two. SO_REUSEADDR alone lets a restart bind at once.
  socket_t listener = INVALID_SOCKET;
  http.set_socket_options([&listener](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listener = sock;
  });
  if (!http.bind_to_port(options.host, options.port)) {
    const std::string why = bind_problem(options.host, options.port);
    std::cerr << "paligemma: cannot listen on " << options.host << ":" << options.port << ": "
              << (why.empty() ? "the address cannot be listened on" : why) << "\n";
    return 1;
  }
  // Debian's libcpp-httplib 0.11 listens with a backlog of 5: when clients connect faster than the accept
  // thread runs (a busy machine), the kernel's queues overflow into SYN cookies and some connections are
  // reset. Listening again on the bound socket only sets a longer backlog.
  ::listen(listener, SOMAXCONN);
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    http.stop();
  });
  stop_signal_waiter = stopper.native_handle();
  struct sigaction forward = {};
  forward.sa_handler = forward_stop_signal;
  sigaction(SIGINT, &forward, nullptr);
  sigaction(SIGTERM, &forward, nullptr);
  std::cerr << "paligemma: serving " << options.model_name << " on http://" << options.host << ":" << options.port
            << "/ (Ctrl-C stops)" << std::endl;
  http.listen_after_bind();
  // listen returned: by a signal, or an error; make sure the stopper thread ends either way. Later signals
  // are ignored (the stopper is gone); the one sent here stays pending for it because it blocks SIGTERM.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  std::cerr << "paligemma: stopped after " << requests << (requests == 1 ? " request" : " requests") << std::endl;
  return 0;
}

}  // namespace pg::server
