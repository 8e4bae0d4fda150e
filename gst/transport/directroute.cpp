#include "directroute.h"

#include <gio/gio.h>
#include <nice/agent.h>
#include <unistd.h>

#include <cstring>

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

namespace {

// Values of srtpenc's GstSrtpCipherType / GstSrtpAuthType enums.
constexpr int kCipherAes128Icm = 1;
constexpr int kAuthSha1_32 = 1;
constexpr int kAuthSha1_80 = 2;
constexpr size_t kMasterKeyAndSalt = 30;

// The elements webrtcbin made for its one (bundled) transport, found by
// factory; more than one of a kind means an unbundled session.
struct TransportElements {
  GstElement *nicesink = nullptr;
  GstElement *srtpenc = nullptr;
  bool ambiguous = false;

  ~TransportElements() {
    if (nicesink) gst_object_unref(nicesink);
    if (srtpenc) gst_object_unref(srtpenc);
  }
};

void find_transport_elements(GstElement *webrtcbin, TransportElements *out) {
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(webrtcbin));
  GValue item = G_VALUE_INIT;
  bool done = false;
  while (!done) {
    switch (gst_iterator_next(it, &item)) {
      case GST_ITERATOR_OK: {
        GstElement *element = GST_ELEMENT(g_value_get_object(&item));
        GstElementFactory *factory = gst_element_get_factory(element);
        const char *name = factory ? GST_OBJECT_NAME(factory) : "";
        GstElement **slot = strcmp(name, "nicesink") == 0  ? &out->nicesink
                            : strcmp(name, "srtpenc") == 0 ? &out->srtpenc
                                                           : nullptr;
        if (slot) {
          if (*slot) out->ambiguous = true;
          else *slot = GST_ELEMENT(gst_object_ref(element));
        }
        g_value_reset(&item);
        break;
      }
      case GST_ITERATOR_RESYNC:
        gst_iterator_resync(it);
        break;
      default:
        done = true;
    }
  }
  g_value_unset(&item);
  gst_iterator_free(it);
}

bool read_profile(GstElement *srtpenc, SrtpProfile *out) {
  gint cipher = 0, auth = 0;
  g_object_get(srtpenc, "rtp-cipher", &cipher, "rtp-auth", &auth, nullptr);
  if (cipher == kCipherAes128Icm && auth == kAuthSha1_80) *out = SrtpProfile::Aes128CmSha1_80;
  else if (cipher == kCipherAes128Icm && auth == kAuthSha1_32) *out = SrtpProfile::Aes128CmSha1_32;
  else return false;
  return true;
}

}  // namespace

std::shared_ptr<DirectRoute> DirectRoute::open(GstElement *webrtcbin, std::string *why) {
  TransportElements elements;
  find_transport_elements(webrtcbin, &elements);
  if (elements.ambiguous) {
    *why = "more than one transport (not bundled)";
    return nullptr;
  }
  if (!elements.nicesink || !elements.srtpenc) {
    *why = "webrtcbin has no transport yet";
    return nullptr;
  }

  std::shared_ptr<DirectRoute> route(new DirectRoute());
  size_t key_len = kMasterKeyAndSalt;
  if (!read_profile(elements.srtpenc, &route->profile_)) {
    *why = "DTLS agreed an SRTP profile the direct path does not implement";
    return nullptr;
  }
  GstBuffer *key = nullptr;
  g_object_get(elements.srtpenc, "key", &key, nullptr);
  if (!key || gst_buffer_get_size(key) < key_len) {
    if (key) gst_buffer_unref(key);
    *why = "DTLS has not given SRTP keys yet";
    return nullptr;
  }
  route->master_key_.resize(key_len);
  gst_buffer_extract(key, 0, route->master_key_.data(), key_len);
  gst_buffer_unref(key);

  NiceAgent *agent = nullptr;
  guint stream = 0;
  g_object_get(elements.nicesink, "agent", &agent, "stream", &stream, nullptr);
  if (!agent) {
    *why = "no ICE agent";
    return nullptr;
  }
  NiceCandidate *local = nullptr, *remote = nullptr;
  GSocket *socket = nullptr;
  bool selected = nice_agent_get_selected_pair(agent, stream, NICE_COMPONENT_TYPE_RTP, &local, &remote);
  // A relayed candidate's socket talks to the TURN server, not the viewer.
  if (selected && local->type != NICE_CANDIDATE_TYPE_RELAYED && local->transport == NICE_CANDIDATE_TRANSPORT_UDP) {
    nice_address_copy_to_sockaddr(&remote->addr, reinterpret_cast<sockaddr *>(&route->remote_));
    route->remote_len_ = route->remote_.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    socket = nice_agent_get_selected_socket(agent, stream, NICE_COMPONENT_TYPE_RTP);
  }
  g_object_unref(agent);
  if (!selected) {
    *why = "ICE has not selected a pair";
    return nullptr;
  }
  if (!socket) {
    *why = "ICE selected a relayed or TCP candidate";
    return nullptr;
  }
  route->fd_ = dup(g_socket_get_fd(socket));
  g_object_unref(socket);
  if (route->fd_ < 0) {
    *why = std::string("dup: ") + g_strerror(errno);
    return nullptr;
  }
  return route;
}

DirectRoute::~DirectRoute() {
  if (fd_ >= 0) ::close(fd_);
}

std::string DirectRoute::describe() const {
  GSocketAddress *address =
      g_socket_address_new_from_native(const_cast<sockaddr_storage *>(&remote_), remote_len_);
  std::string text = srtp_profile_name(profile_);
  if (address) {
    GInetAddress *inet = g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(address));
    gchar *host = g_inet_address_to_string(inet);
    text += std::string(" to ") + host + ":" +
            std::to_string(g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(address)));
    g_free(host);
    g_object_unref(address);
  }
  return text;
}

}  // namespace wb
