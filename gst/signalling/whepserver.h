// The built-in WHEP server (draft-ietf-wish-whep, RFC 9725 conventions) on
// libsoup 3, and the viewer page. It only speaks HTTP: what an offer means
// is decided by its WhepHandler (the viewer manager), so an application can
// bring its own signalling through the elements' action signals instead.
#pragma once

#include <glib.h>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

typedef struct _SoupServer SoupServer;
typedef struct _SoupServerMessage SoupServerMessage;

namespace wb {

struct HttpReply {
  int status = 200;
  std::string content_type;  // empty: no body
  std::string body;
  std::map<std::string, std::string> headers;
};

// What the signalling asks of the viewer manager.
class WhepHandler {
 public:
  virtual ~WhepHandler() = default;
  // Answers a viewer's offer: 201 with answer and session id, or an error
  // reply. May block for the time a transport takes to answer; called on a
  // worker thread.
  struct Join {
    int status = 0;
    std::string session_id;
    std::string answer;
    std::string error;
    unsigned retry_after_s = 0;
  };
  virtual Join join(const std::string &offer_sdp) = 0;
  virtual bool leave(const std::string &session_id) = 0;
};

// How a request is routed, decided from its line and headers alone.
struct Route {
  enum class Action { Reply, Page, Join, Leave };
  Action action = Action::Reply;
  std::string session_id;  // for Leave
  HttpReply reply;         // for Reply
};

constexpr size_t kMaxOfferBytes = 64 * 1024;

Route route_request(const std::string &method, const std::string &path,
                    const std::string &content_type, size_t body_size);

// The reply for a finished join (201 with Location, or the error).
HttpReply join_reply(const WhepHandler::Join &join);

class WhepServer {
 public:
  explicit WhepServer(WhepHandler &handler);
  ~WhepServer();
  WhepServer(const WhepServer &) = delete;
  WhepServer &operator=(const WhepServer &) = delete;

  // Listens on address:port; must run on the thread that iterates `context`
  // (the server's sources attach to it). port 0 picks a free port.
  bool start(GMainContext *context, const std::string &address, unsigned port, std::string *error);
  void stop();

 private:
  static void on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *,
                         gpointer self);
  void handle(SoupServerMessage *msg, const char *path);
  void start_join(SoupServerMessage *msg, std::string offer);

  WhepHandler &handler_;
  SoupServer *server_ = nullptr;
  GMainContext *context_ = nullptr;
  // Completions that arrive after stop() find this false and are dropped.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // stop() waits for answers still being made: they call into the handler.
  struct JoinsInFlight {
    std::mutex mutex;
    std::condition_variable done;
    unsigned count = 0;
  };
  std::shared_ptr<JoinsInFlight> joins_ = std::make_shared<JoinsInFlight>();
};

}  // namespace wb
