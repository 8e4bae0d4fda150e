// Offer checks and answer repair: pure SDP in, decisions out.
#include <gtest/gtest.h>

#include "peer/peerconnection.h"
#include "viewer/liteanswer.h"
#include "viewer/offer.h"

using namespace wb;

namespace {

const char *kChromeLikeOffer =
    "v=0\r\n"
    "o=- 1 2 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "t=0 0\r\n"
    "a=group:BUNDLE 0 1\r\n"
    "a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 106 127\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:abcd\r\n"
    "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=mid:0\r\n"
    "a=recvonly\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n"
    "a=rtpmap:102 H264/90000\r\n"
    "a=rtcp-fb:102 nack pli\r\n"
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
    "a=rtpmap:103 H264/90000\r\n"
    "a=fmtp:103 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n"
    "a=rtpmap:106 H264/90000\r\n"
    "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    "a=rtpmap:127 H264/90000\r\n"
    "a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:abcd\r\n"
    "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=mid:1\r\n"
    "a=recvonly\r\n"
    "a=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:0 PCMU/8000\r\n";

StreamFormat h264(const char *plid) { return StreamFormat{Codec::H264, plid}; }
StreamFormat opus() { return StreamFormat{Codec::Opus, ""}; }

std::string replace_all(std::string s, const std::string &from, const std::string &to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

// Our side of an ICE-lite answer, as the port would fill it in.
LiteAnswerParams lite_params(std::vector<uint32_t> ssrcs) {
  LiteAnswerParams params;
  params.ice_ufrag = "uFrg";
  params.ice_pwd = "0123456789abcdefghijklmn";
  params.fingerprint = "11:22";
  params.candidates = {{"127.0.0.1", 40000}};
  params.cname = "cname1";
  params.ssrcs = std::move(ssrcs);
  return params;
}

}  // namespace

TEST(Offer, PicksTheH264PayloadTypeMatchingOurProfile) {
  OfferCheck check = check_offer(kChromeLikeOffer, h264("42e01f"), opus());
  ASSERT_EQ(check.status, 0) << check.error;
  ASSERT_EQ(check.media.size(), 2u);
  EXPECT_EQ(check.media[0].payload_type, 106);
  EXPECT_EQ(check.media[0].profile_level_id, "42e01f");
  EXPECT_EQ(check.media[1].payload_type, 111);
  EXPECT_EQ(check.media[1].codec, Codec::Opus);
}

TEST(Offer, HighProfileStreamPrefersTheHighProfilePayloadType) {
  OfferCheck check = check_offer(kChromeLikeOffer, h264("640028"), opus());
  ASSERT_EQ(check.status, 0);
  EXPECT_EQ(check.media[0].payload_type, 127);
}

TEST(Offer, NeverPicksPacketizationModeZero) {
  std::string offer = replace_all(kChromeLikeOffer, "packetization-mode=1", "packetization-mode=0");
  OfferCheck check = check_offer(offer, h264("42e01f"), StreamFormat{});
  EXPECT_EQ(check.status, 406);
  EXPECT_NE(check.error.find("packetization-mode=1"), std::string::npos) << check.error;
}

TEST(Offer, Vp8StreamPicksVp8) {
  OfferCheck check = check_offer(kChromeLikeOffer, StreamFormat{Codec::VP8, ""}, opus());
  ASSERT_EQ(check.status, 0);
  EXPECT_EQ(check.media[0].payload_type, 96);
}

TEST(Offer, NoCodecWeCanSendIs406WithReason) {
  OfferCheck check = check_offer(kChromeLikeOffer, StreamFormat{Codec::VP9, ""}, StreamFormat{});
  EXPECT_EQ(check.status, 406);
  EXPECT_NE(check.error.find("VP9"), std::string::npos) << check.error;
  EXPECT_NE(check.error.find("H264"), std::string::npos) << check.error;
}

// Layers in two codecs: the first the offer can take, in our order (the
// best layers' codec first), whatever the offer's order.
TEST(Offer, LayersInTwoCodecsGiveEachViewerTheFirstItDecodes) {
  const std::vector<StreamFormat> both = {h264("42e01f"), StreamFormat{Codec::VP8, ""}};
  OfferCheck check = check_offer(kChromeLikeOffer, both, opus());
  ASSERT_EQ(check.status, 0) << check.error;
  EXPECT_EQ(check.media[0].codec, Codec::H264);
  EXPECT_EQ(check.media[0].payload_type, 106);

  // A browser without H.264 (Firefox without OpenH264) offers VP8 alone.
  std::string vp8_only = replace_all(kChromeLikeOffer, " 96 97 102 103 106 127\r\n", " 96 97\r\n");
  check = check_offer(vp8_only, both, opus());
  ASSERT_EQ(check.status, 0) << check.error;
  EXPECT_EQ(check.media[0].codec, Codec::VP8);
  EXPECT_EQ(check.media[0].payload_type, 96);

  std::string vp9_only = replace_all(vp8_only, "VP8/90000", "VP9/90000");
  check = check_offer(vp9_only, both, StreamFormat{});
  EXPECT_EQ(check.status, 406);
  EXPECT_NE(check.error.find("we send H264 (packetization-mode=1) or VP8 but the offer has VP9"), std::string::npos)
      << check.error;
}

TEST(Offer, AudioOnlyBroadcastRejectsVideoLineButAccepts) {
  OfferCheck check = check_offer(kChromeLikeOffer, StreamFormat{}, opus());
  ASSERT_EQ(check.status, 0);
  EXPECT_FALSE(check.media[0].accepted());
  EXPECT_TRUE(check.media[1].accepted());
}

// RTP has seven bits for the payload type: a format beyond them (found by
// the offer fuzzer: 222 was chosen, and every header would have carried 94)
// is never picked.
TEST(Offer, PayloadTypesBeyondSevenBitsAreNeverChosen) {
  std::string offer = replace_all(kChromeLikeOffer, "SAVPF 111 0", "SAVPF 222 111");
  offer = replace_all(offer, "a=rtpmap:0 PCMU/8000", "a=rtpmap:222 opus/48000/2");
  OfferCheck check = check_offer(offer, h264("42e01f"), opus());
  ASSERT_EQ(check.status, 0) << check.error;
  EXPECT_EQ(check.media[1].payload_type, 111);
  // Only such a format: nothing we can send on that m-line.
  offer = replace_all(offer, "SAVPF 222 111", "SAVPF 222");
  check = check_offer(offer, StreamFormat{}, opus());
  EXPECT_EQ(check.status, 406) << check.error;
  EXPECT_FALSE(check.media[1].accepted());
}

TEST(Offer, GarbageIs400) {
  EXPECT_EQ(check_offer("", h264("42e01f"), opus()).status, 400);
  EXPECT_EQ(check_offer("hello world", h264("42e01f"), opus()).status, 400);
  EXPECT_EQ(check_offer("v=0\r\ns=-\r\n", h264("42e01f"), opus()).status, 400);
}

// Found by tests/fuzz/offer_fuzzer: an fmtp value that is not UTF-8 made
// GStreamer warn (fatal under G_DEBUG=fatal-warnings) while reading caps.
TEST(Offer, NotUtf8Is400) {
  std::string offer = replace_all(kChromeLikeOffer, "profile-level-id=42e01f", "profile-level-id=42e0\xff");
  OfferCheck check = check_offer(offer, h264("42e01f"), opus());
  EXPECT_EQ(check.status, 400);
  EXPECT_NE(check.error.find("UTF-8"), std::string::npos);
  EXPECT_EQ(check_offer(std::string(kChromeLikeOffer) + std::string(1, '\0'), h264("42e01f"), opus()).status, 400);
}

TEST(Offer, MissingIceCredentialsIs400) {
  std::string offer = replace_all(kChromeLikeOffer, "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n", "");
  OfferCheck check = check_offer(offer, h264("42e01f"), opus());
  EXPECT_EQ(check.status, 400);
  EXPECT_NE(check.error.find("ICE"), std::string::npos);
}

TEST(Offer, SendonlyOfferIsNotSomethingWeCanServe) {
  std::string offer = replace_all(kChromeLikeOffer, "a=recvonly", "a=sendonly");
  EXPECT_EQ(check_offer(offer, h264("42e01f"), opus()).status, 406);
}

TEST(Offer, BundleOnlyLineWithPortZeroIsAccepted) {
  std::string offer = replace_all(kChromeLikeOffer, "m=audio 9", "m=audio 0");
  offer = replace_all(offer, "a=mid:1\r\n", "a=mid:1\r\na=bundle-only\r\n");
  EXPECT_TRUE(check_offer(offer, h264("42e01f"), opus()).media[1].accepted());
  std::string disabled = replace_all(kChromeLikeOffer, "m=audio 9", "m=audio 0");
  EXPECT_FALSE(check_offer(disabled, h264("42e01f"), opus()).media[1].accepted());
}

TEST(Offer, SecondVideoLineIsRejected) {
  std::string offer = kChromeLikeOffer;
  auto audio = offer.find("m=audio");
  std::string video_section = offer.substr(offer.find("m=video"), audio - offer.find("m=video"));
  offer = replace_all(offer, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2");
  offer += replace_all(video_section, "a=mid:0", "a=mid:2");
  OfferCheck check = check_offer(offer, h264("42e01f"), opus());
  ASSERT_EQ(check.media.size(), 3u);
  EXPECT_TRUE(check.media[0].accepted());
  EXPECT_FALSE(check.media[2].accepted());
}

TEST(Answer, RepairPutsProfileLevelIdBack) {
  OfferCheck check = check_offer(kChromeLikeOffer, h264("42e01f"), opus());
  // What 1.22 writes when it turns the offered profile into caps fields.
  std::string answer =
      "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 106\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
      "a=rtpmap:106 H264/90000\r\na=fmtp:106 packetization-mode=1\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n"
      "a=rtpmap:111 OPUS/48000/2\r\n";
  std::string repaired = repair_answer(answer, check);
  EXPECT_NE(repaired.find("a=fmtp:106 profile-level-id=42e01f;packetization-mode=1"), std::string::npos) << repaired;
  EXPECT_NE(repaired.find("a=rtpmap:111 OPUS/48000/2"), std::string::npos);

  std::string no_fmtp = replace_all(answer, "a=fmtp:106 packetization-mode=1\r\n", "");
  repaired = repair_answer(no_fmtp, check);
  EXPECT_NE(repaired.find("a=fmtp:106 profile-level-id=42e01f;packetization-mode=1"), std::string::npos) << repaired;
}

TEST(Answer, CompleteAnswerIsLeftAlone) {
  OfferCheck check = check_offer(kChromeLikeOffer, h264("42e01f"), opus());
  std::string answer =
      "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 106\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
      "a=rtpmap:106 H264/90000\r\na=fmtp:106 packetization-mode=1;profile-level-id=42e01f\r\n";
  EXPECT_NE(repair_answer(answer, check).find("a=fmtp:106 packetization-mode=1;profile-level-id=42e01f"),
            std::string::npos);
}

TEST(PublisherOffer, SendonlyIsWhatAPublisherOffersAndRecvonlyIsRefused) {
  std::string sendonly = kChromeLikeOffer;
  for (size_t at; (at = sendonly.find("a=recvonly")) != std::string::npos;)
    sendonly.replace(at, 10, "a=sendonly");
  StreamFormat h264{Codec::H264, "42e01f"}, opus{Codec::Opus, ""};
  OfferCheck publisher = check_offer(sendonly, h264, opus, Offerer::Publisher);
  ASSERT_EQ(publisher.status, 0) << publisher.error;
  EXPECT_EQ(publisher.media[0].payload_type, 106);  // constrained baseline, mode 1
  EXPECT_EQ(publisher.media[1].payload_type, 111);
  // The same offer is useless from a viewer, and a recvonly one from a publisher.
  EXPECT_EQ(check_offer(sendonly, h264, opus).status, 406);
  OfferCheck wrong_way = check_offer(kChromeLikeOffer, h264, opus, Offerer::Publisher);
  EXPECT_EQ(wrong_way.status, 406);
  EXPECT_NE(wrong_way.error.find("does not send"), std::string::npos) << wrong_way.error;
}

// ICE-lite: which offers the shared port serves, and the answer we write.
TEST(LiteOffer, BundledMuxedSha256OfferIsServedAsDtlsServer) {
  OfferCheck check = check_offer(kChromeLikeOffer, h264("42e01f"), opus());
  ASSERT_EQ(check.status, 0) << check.error;
  LiteOffer lite = read_lite_offer(kChromeLikeOffer, check);
  EXPECT_EQ(lite.problem, "");
  EXPECT_TRUE(lite.we_are_dtls_server);  // no a=setup: actpass
  EXPECT_EQ(lite.remote_fingerprint.substr(0, 5), "AA:BB");
}

TEST(LiteOffer, PassiveOfferMakesUsTheDtlsClient) {
  std::string offer = replace_all(kChromeLikeOffer, "a=rtcp-mux\r\n", "a=rtcp-mux\r\na=setup:passive\r\n");
  OfferCheck check = check_offer(offer, h264("42e01f"), opus());
  EXPECT_FALSE(read_lite_offer(offer, check).we_are_dtls_server);
}

TEST(LiteOffer, UnbundledOrUnmuxedOrSha1OffersAreNotServed) {
  std::string unbundled = replace_all(kChromeLikeOffer, "a=group:BUNDLE 0 1\r\n", "");
  OfferCheck check = check_offer(unbundled, h264("42e01f"), opus());
  EXPECT_NE(read_lite_offer(unbundled, check).problem.find("BUNDLE"), std::string::npos);

  std::string unmuxed = replace_all(kChromeLikeOffer, "a=rtcp-mux\r\n", "");
  check = check_offer(unmuxed, h264("42e01f"), opus());
  EXPECT_NE(read_lite_offer(unmuxed, check).problem.find("rtcp-mux"), std::string::npos);

  std::string sha1 = replace_all(kChromeLikeOffer, "sha-256", "sha-1");
  check = check_offer(sha1, h264("42e01f"), opus());
  EXPECT_NE(read_lite_offer(sha1, check).problem.find("sha-256"), std::string::npos);

  // One accepted medium needs no bundle.
  check = check_offer(unbundled, h264("42e01f"), StreamFormat{});
  EXPECT_EQ(read_lite_offer(unbundled, check).problem, "");
}

TEST(LiteAnswer, AnswersEveryMlineWithOurTransportAndChoice) {
  std::string offer = replace_all(kChromeLikeOffer, "m=audio", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                                                               "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
                                                               "a=mid:2\r\nm=audio");
  OfferCheck check = check_offer(offer, h264("42e01f"), opus());
  ASSERT_EQ(check.status, 0) << check.error;
  LiteAnswerParams params = lite_params({1111, 0, 3333});
  std::string answer = write_lite_answer(offer, check, params);

  GstSDPMessage *msg = nullptr;
  ASSERT_EQ(gst_sdp_message_new(&msg), GST_SDP_OK);
  ASSERT_EQ(gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(answer.data()), answer.size(), msg), GST_SDP_OK);
  ASSERT_EQ(gst_sdp_message_medias_len(msg), 3u);
  EXPECT_STREQ(gst_sdp_message_get_attribute_val(msg, "group"), "BUNDLE 0 1");
  EXPECT_NE(gst_sdp_message_get_attribute_val(msg, "ice-lite"), nullptr);
  const GstSDPMedia *video = gst_sdp_message_get_media(msg, 0);
  EXPECT_STREQ(gst_sdp_media_get_format(video, 0), "106");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(video, "setup"), "passive");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(video, "ice-ufrag"), "uFrg");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(video, "fingerprint"), "sha-256 11:22");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(video, "candidate"), "1 1 udp 2130706431 127.0.0.1 40000 typ host");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(video, "ssrc"), "1111 cname:cname1");
  EXPECT_NE(gst_sdp_media_get_attribute_val(video, "sendonly"), nullptr);
  std::string fmtp = gst_sdp_media_get_attribute_val(video, "fmtp");
  EXPECT_NE(fmtp.find("packetization-mode=1"), std::string::npos);
  EXPECT_NE(fmtp.find("profile-level-id=42e01f"), std::string::npos);
  EXPECT_EQ(gst_sdp_media_get_port(gst_sdp_message_get_media(msg, 1)), 0u);  // the data channel
  const GstSDPMedia *audio = gst_sdp_message_get_media(msg, 2);
  EXPECT_STREQ(gst_sdp_media_get_format(audio, 0), "111");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(audio, "fmtp"), "111 minptime=10;useinbandfec=1");
  gst_sdp_message_free(msg);
}

// webrtcbin 1.22 refuses a whole answer in which any section, rejected or
// not, lacks ICE credentials, a fingerprint or a setup role; werift throws
// on a section without an rtpmap.
TEST(LiteAnswer, RejectedSectionKeepsOurTransportAndTheOfferedCodec) {
  OfferCheck check = check_offer(kChromeLikeOffer, h264("42e01f"), StreamFormat{});
  ASSERT_EQ(check.status, 0) << check.error;
  std::string answer = write_lite_answer(kChromeLikeOffer, check, lite_params({1111, 3333}));

  GstSDPMessage *msg = nullptr;
  ASSERT_EQ(gst_sdp_message_new(&msg), GST_SDP_OK);
  ASSERT_EQ(gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(answer.data()), answer.size(), msg), GST_SDP_OK);
  ASSERT_EQ(gst_sdp_message_medias_len(msg), 2u);
  EXPECT_STREQ(gst_sdp_message_get_attribute_val(msg, "group"), "BUNDLE 0");
  const GstSDPMedia *audio = gst_sdp_message_get_media(msg, 1);
  EXPECT_EQ(gst_sdp_media_get_port(audio), 0u);
  EXPECT_STREQ(gst_sdp_media_get_format(audio, 0), "111");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(audio, "mid"), "1");
  EXPECT_NE(gst_sdp_media_get_attribute_val(audio, "inactive"), nullptr);
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(audio, "ice-ufrag"), "uFrg");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(audio, "ice-pwd"), "0123456789abcdefghijklmn");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(audio, "fingerprint"), "sha-256 11:22");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(audio, "setup"), "passive");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(audio, "rtpmap"), "111 opus/48000/2");
  EXPECT_EQ(gst_sdp_media_get_attribute_val(audio, "candidate"), nullptr);
  EXPECT_EQ(gst_sdp_media_get_attribute_val(audio, "ssrc"), nullptr);
  gst_sdp_message_free(msg);
}

// webrtcbin 1.22 as the offerer has ICE only for the first m-line of its
// BUNDLE group: rejecting that one would leave the others without transport.
TEST(LiteAnswer, UnservedFirstSectionOfTheBundleStaysInItInactive) {
  OfferCheck check = check_offer(kChromeLikeOffer, StreamFormat{}, opus());
  ASSERT_EQ(check.status, 0) << check.error;
  std::string answer = write_lite_answer(kChromeLikeOffer, check, lite_params({1111, 3333}));

  GstSDPMessage *msg = nullptr;
  ASSERT_EQ(gst_sdp_message_new(&msg), GST_SDP_OK);
  ASSERT_EQ(gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(answer.data()), answer.size(), msg), GST_SDP_OK);
  EXPECT_STREQ(gst_sdp_message_get_attribute_val(msg, "group"), "BUNDLE 0 1");
  const GstSDPMedia *video = gst_sdp_message_get_media(msg, 0);
  EXPECT_EQ(gst_sdp_media_get_port(video), 9u);
  EXPECT_NE(gst_sdp_media_get_attribute_val(video, "inactive"), nullptr);
  EXPECT_EQ(gst_sdp_media_get_attribute_val(video, "sendonly"), nullptr);
  EXPECT_STREQ(gst_sdp_media_get_format(video, 0), "96");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(video, "rtpmap"), "96 VP8/90000");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(video, "ice-ufrag"), "uFrg");
  EXPECT_STREQ(gst_sdp_media_get_attribute_val(video, "candidate"), "1 1 udp 2130706431 127.0.0.1 40000 typ host");
  EXPECT_EQ(gst_sdp_media_get_attribute_val(video, "ssrc"), nullptr);
  const GstSDPMedia *audio = gst_sdp_message_get_media(msg, 1);
  EXPECT_NE(gst_sdp_media_get_attribute_val(audio, "sendonly"), nullptr);
  gst_sdp_message_free(msg);
}

TEST(LiteAnswer, HonoursOnlyTheFeedbackWeAnswerAndNoRtx) {
  std::string offer = replace_all(kChromeLikeOffer, "a=rtpmap:106 H264/90000\r\n",
                                  "a=rtpmap:106 H264/90000\r\n"
                                  "a=rtcp-fb:106 goog-remb\r\na=rtcp-fb:106 transport-cc\r\n"
                                  "a=rtcp-fb:106 ccm fir\r\na=rtcp-fb:106 nack\r\na=rtcp-fb:106 nack pli\r\n"
                                  "a=rtpmap:107 rtx/90000\r\na=fmtp:107 apt=106\r\n");
  offer = replace_all(offer, "96 97 102 103 106 127", "96 97 102 103 106 107 127");
  OfferCheck check = check_offer(offer, h264("42e01f"), opus());
  ASSERT_EQ(check.status, 0) << check.error;
  LiteAnswerParams params = lite_params({1111, 3333});
  std::string answer = write_lite_answer(offer, check, params);
  // Retransmissions go out as the original packets (RFC 4585 generic
  // NACK): without an RTX stream for padding, no RTX payload type is
  // answered.
  EXPECT_EQ(check.media[0].rtx_payload_type, 107);
  EXPECT_NE(answer.find("m=video 9 UDP/TLS/RTP/SAVPF 106\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("a=rtcp-fb:106 nack\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("a=rtcp-fb:106 nack pli\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("a=rtcp-fb:106 ccm fir\r\n"), std::string::npos) << answer;
  // The receiver's estimate picks the viewer's layer (docs/layers.md);
  // transport-wide feedback would need a per-send header extension.
  EXPECT_NE(answer.find("a=rtcp-fb:106 goog-remb\r\n"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("transport-cc"), std::string::npos) << answer;
  EXPECT_EQ(answer.find("rtx"), std::string::npos) << answer;

  // Not offered, not answered: the viewer will not NACK.
  std::string plain = write_lite_answer(kChromeLikeOffer, check_offer(kChromeLikeOffer, h264("42e01f"), opus()), params);
  EXPECT_EQ(plain.find("nack"), std::string::npos) << plain;
  EXPECT_EQ(plain.find("goog-remb"), std::string::npos) << plain;
}

// The padding that probes a viewer's link goes on an RTX stream of its own,
// which the answer must name (payload type, apt, and the FID group) for the
// browser to count it into its estimate.
TEST(LiteAnswer, AnRtxStreamForPaddingIsAnsweredWithItsSsrcInAFidGroup) {
  std::string offer = replace_all(kChromeLikeOffer, "a=rtpmap:106 H264/90000\r\n",
                                  "a=rtpmap:106 H264/90000\r\na=rtpmap:107 rtx/90000\r\na=fmtp:107 apt=106\r\n");
  offer = replace_all(offer, "96 97 102 103 106 127", "96 97 102 103 106 107 127");
  OfferCheck check = check_offer(offer, h264("42e01f"), opus());
  ASSERT_EQ(check.status, 0) << check.error;
  EXPECT_EQ(check.media[0].rtx_payload_type, 107);
  EXPECT_EQ(check.media[1].rtx_payload_type, -1) << "audio";
  LiteAnswerParams params = lite_params({1111, 3333});
  params.rtx_ssrcs = {2222, 0};
  const std::string answer = write_lite_answer(offer, check, params);
  EXPECT_NE(answer.find("m=video 9 UDP/TLS/RTP/SAVPF 106 107\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("a=rtpmap:107 rtx/90000\r\na=fmtp:107 apt=106\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("a=ssrc-group:FID 1111 2222\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("a=ssrc:2222 cname:cname1\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"), std::string::npos) << answer;

  // RTX of another codec is not ours: the VP8 one of the plain offer.
  check = check_offer(kChromeLikeOffer, h264("42e01f"), opus());
  EXPECT_EQ(check.media[0].rtx_payload_type, -1);
  EXPECT_EQ(write_lite_answer(kChromeLikeOffer, check, params).find("rtx"), std::string::npos);
}

// abs-send-time, when offered, is answered with the offer's id on each
// section we send, so that Chromium's estimate sees when each packet left.
TEST(LiteAnswer, AbsSendTimeIsAnsweredWithTheOfferedIdOnlyWhereOffered) {
  const std::string ext = std::string(" ") + kAbsSendTimeUri + "\r\n";
  std::string offer = replace_all(kChromeLikeOffer, "a=rtpmap:106 H264/90000\r\n",
                                  "a=rtpmap:106 H264/90000\r\na=extmap:3" + ext +
                                      "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n");
  offer = replace_all(offer, "a=rtpmap:111 opus/48000/2\r\n", "a=rtpmap:111 opus/48000/2\r\na=extmap:5/recvonly" + ext);
  OfferCheck check = check_offer(offer, h264("42e01f"), opus());
  ASSERT_EQ(check.status, 0) << check.error;
  ASSERT_EQ(check.media.size(), 2u);
  EXPECT_EQ(check.media[0].abs_send_time_id, 3);
  EXPECT_EQ(check.media[1].abs_send_time_id, 5);
  const std::string answer = write_lite_answer(offer, check, lite_params({1111, 3333}));
  const size_t audio = answer.find("m=audio");
  ASSERT_NE(audio, std::string::npos) << answer;
  EXPECT_LT(answer.find("a=extmap:3" + ext), audio) << answer;
  EXPECT_GT(answer.find("a=extmap:5" + ext), audio) << answer;
  EXPECT_EQ(answer.find("sdes:mid"), std::string::npos) << "not ours to write: " << answer;

  // Ids a one-byte header cannot carry, and a direction we would not send
  // in, are not taken.
  for (const char *bad : {"a=extmap:15", "a=extmap:0", "a=extmap:3/sendonly", "a=extmap:x"}) {
    const std::string o = replace_all(kChromeLikeOffer, "a=rtpmap:106 H264/90000\r\n",
                                      "a=rtpmap:106 H264/90000\r\n" + std::string(bad) + ext);
    check = check_offer(o, h264("42e01f"), opus());
    ASSERT_EQ(check.status, 0) << check.error;
    EXPECT_EQ(check.media[0].abs_send_time_id, 0) << bad;
    EXPECT_EQ(write_lite_answer(o, check, lite_params({1111, 3333})).find("abs-send-time"), std::string::npos) << bad;
  }
}

TEST(Offer, PushOffersKeepEverySectionOnAPortInsteadOfBundleOnly) {
  const std::string offer =
      "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0 audio1\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:video0\r\na=sendonly\r\n"
      "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=bundle-only\r\na=mid:audio1\r\na=sendonly\r\n";
  const std::string out = offer_without_bundle_only(offer);
  EXPECT_EQ(out, "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0 audio1\r\n"
                 "m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:video0\r\na=sendonly\r\n"
                 "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio1\r\na=sendonly\r\n");
  // A section rejected on purpose (port 0 without bundle-only) stays so.
  const std::string rejected = "v=0\r\nm=audio 0 RTP/AVP 0\r\na=inactive\r\n";
  EXPECT_EQ(offer_without_bundle_only(rejected), rejected);
}
