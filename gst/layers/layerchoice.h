// Which video layer a viewer's network carries, decided from its own
// feedback: the receiver's estimate (REMB: Chromium's delay-based estimate
// of what reaches it) and the loss its receiver reports show. A policy
// with the time as an argument, so traces can be replayed in tests.
//
// Down quickly (a layer the network cannot carry freezes the picture): when
// the estimate falls (the receiver saw its delay grow: overuse) below the
// layer's rate and stays there for a second, to the highest layer that
// fits it with headroom; or one down on heavy loss. A rising estimate
// under the layer's rate is the receiver still ramping up after a move,
// not congestion; but a first estimate in the receiver's first seconds is
// overuse (Config::overuse_before), and under 90 % of the layer's rate,
// with loss or a growing round trip to say it is the link's, moves the
// viewer down at once. A viewer that can be padded (Config::padding: it
// has an RTX stream) is moved up only after padding at the next layer's
// rate held without loss or a growing round trip; the rest of this
// paragraph is the move up of the others. Up one layer at a time, once
// the current one has gone calm
// (no congestion, little loss) for a while: the receiver's estimate cannot
// say whether the next layer fits (libwebrtc caps it near 1.5 times what
// arrives, and layers are further apart), so a move up is a probe. A move
// down soon after a move up is a failed probe, and the wait before the
// next doubles: a viewer on a link too thin for the layer above tries it
// less and less often, never flapping; one report of heavy loss fails a
// probe. Below the lowest layer (its estimate under half of it while it
// loses, or heavy loss on it) the viewer's video is paused (kPaused: it
// keeps its audio), and resuming on the lowest layer is a probe like any
// move up. Loss reported just after a move down is the layer before it,
// and is not counted. An application may pin the layer.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include "fanout/fanout.h"

namespace wb {

class LayerChoice {
 public:
  using Clock = std::chrono::steady_clock;
  using Rates = std::array<uint64_t, kMaxLayers>;  // bits/s by layer index; 0: no such layer

  struct Config {
    double congested = 0.75;      // an estimate under this share of the layer's rate: too much
    double pause_under = 0.5;     // on the lowest layer, only under this share: no video at all
    // ... for this long, when its reports show loss too; without loss, for
    // longer: a receiver whose machine is busy takes its own delay for
    // overuse (seen in CI: an unshaped viewer's estimate fell under half the
    // top layer for seconds, with no loss), while a thin link loses.
    std::chrono::milliseconds congested_for{1000};
    std::chrono::milliseconds congested_without_loss_for{4000};
    double headroom = 0.85;       // moving down, a layer fits when its rate <= estimate * headroom
    double heavy_loss = 0.10;     // reported loss that means the layer is too much
    unsigned heavy_reports = 2;   // ... in this many reports in a row
    // In the first seconds of a move up, one report with this much loss
    // fails the probe: every second more on a layer the link cannot carry
    // loses half the video (generated viewers on 1 Mbit/s links probing
    // 2.5 Mbit/s lost 54 %, docs/layer-groups.md). Above heavy_loss, so the
    // few packets of a switch's keyframe burst lost into a link's buffer
    // (~5 % of that second on a layer that fits) do not fail it.
    double probe_loss = 0.25;
    std::chrono::milliseconds probe_judged{4000};
    double light_loss = 0.02;     // more than this is not calm
    std::chrono::milliseconds up_after{4000};      // calm this long before a move up
    // No move up this soon after a move down: a failed probe costs the
    // viewer a short freeze (measured in browser-layers), so not often.
    std::chrono::milliseconds up_backoff{15000};
    std::chrono::milliseconds max_backoff{40000};
    // After a move down, loss reports still describe the layer before it.
    std::chrono::milliseconds settle{2500};
    std::chrono::milliseconds failed_probe{15000};   // a move down this soon after a move up
    std::chrono::milliseconds estimate_valid{5000};  // a REMB older than this is forgotten
    // A receiver's estimator (libwebrtc's, in Chromium) sends nothing for
    // its first 5 s of media unless it sees overuse first, and then starts
    // at 85 % of what arrived. A first estimate sooner than this after the
    // start is overuse: of the viewer's link, or of its own machine (a busy
    // receiver's delays grow too). Seen in browser-layers (2026-12-06, 37
    // runs logged): viewers started above a 500 kbit/s link had their first
    // REMB 0.8-3.4 s after their start in 34 (4.25 s once, beside a busy
    // loop), before or just as their loss began; unshaped viewers' first
    // came 5.1-6.0 s after theirs in 34, but 2.9 s twice beside a busy loop
    // (175-180 kbit/s, no loss, a round trip under 1 ms) and 4.7 s once
    // (122 kbit/s, no loss).
    std::chrono::milliseconds overuse_before{4000};
    // For this long after such a first estimate, any estimate under
    // `congested_at_start` of the layer's rate moves the viewer down at
    // once, when its link shows what a full link does besides: loss over
    // light_loss, or a round trip `queue_grew` above the shortest of the
    // last seconds. Above `congested`: 85 % of what arrived, audio
    // included, is some 95 % of a layer that the link carries, and 64-80 %
    // of one that it did not.
    std::chrono::milliseconds overuse_judged{4000};
    double congested_at_start = 0.9;
    double queue_grew = 0.02;  // seconds

    // Probing with padding, for a viewer that can be padded (an RTX stream):
    // before a move up, padding brings what it receives from its layer's
    // rate to `padding_over` times the next layer's, rising over
    // `padding_ramp` and held for `padding_hold`. Any loss of
    // `padding_loss` or more (of the padding or of the video), or a falling
    // estimate, fails it at once and the padding stops: the viewer's video
    // never left its layer. Otherwise it moves up.
    bool padding = false;
    double padding_over = 1.05;
    std::chrono::milliseconds padding_ramp{1000};
    std::chrono::milliseconds padding_hold{2500};
    // Calm this long before padding (up_after is for probes by switching).
    std::chrono::milliseconds padding_after{2500};
    double padding_loss = 0.05;
    // After a failed one, the next waits this long, doubling up to the
    // most: cheap, so often enough that a link that widens is climbed in
    // seconds. One whose link was not seen to carry a third of its ramp (no
    // report came back clean once the padding was that high: the link is
    // far from the next layer, as for generated viewers on 300 kbit/s links
    // probing 800) doubles up to the second. Judged by the reports, not by
    // how far the padding rose: a viewer that reports once a second is
    // padded to the top before its first report, and its far misses were
    // tried again every 4 s: 1 Mbit/s viewers probing 2.2 Mbit/s lost 1.28 %
    // of their video (CI-sized layer-groups, 2026-12-06 17:30; the cause is
    // inferred, and three runs after this change lost 0.00 %).
    std::chrono::milliseconds padding_backoff{2000};
    std::chrono::milliseconds max_padding_backoff{4000};
    std::chrono::milliseconds max_padding_backoff_far{16000};
    // A round trip this much longer than the shortest of the seconds before
    // the padding (the link's queue filling) fails it too, before any loss:
    // a link's buffer can take seconds of a small excess (a token bucket's
    // burst), and Chromium's estimate was seen not to move while it did.
    // That is while the padding rises (and one loss window after): the link
    // is full before the padding has reached the next layer's rate.
    double padding_delay = 0.02;  // seconds
    // Once it is full, a queue that drains between frames is the next
    // layer's own: each frame (and the padding sent after it) leaves as a
    // burst, which takes up to a frame interval (33 ms at 30 fps) to cross a
    // link that carries it. So then the round trip must stay over
    // `padding_burst` for `padding_burst_for` (two reports: a sender report
    // goes every 100 ms while padding), or pass `padding_delay_held`. With
    // 20 ms at once throughout, generated viewers on 3 Mbit/s links failed
    // 3 of 4 probes of a 2.2 Mbit/s layer (whose viewers there lost 0.02 %);
    // the highest round trip of a failed one was 24-46 ms in half of them
    // (2026-12-06 16:47, docs/layer-groups.md).
    double padding_burst = 0.035;  // seconds
    std::chrono::milliseconds padding_burst_for{150};
    double padding_delay_held = 0.1;  // seconds

    // Loss given as counts (on_video_report()) is judged over at least this
    // long: Chromium sends a compound with each NACK, some 30 ms apart,
    // and the fraction lost over so few packets swings from 0 to 80 %.
    std::chrono::milliseconds loss_window{500};
  };

  LayerChoice() = default;
  explicit LayerChoice(const Config &config) : config_(config) {}

  // The layer a new viewer starts on: the best whose rate is at most
  // `start_bitrate` (0: `first`, the best layer of its codec, whatever its
  // rate), or `first` while its rate is not measured. Nothing is known of
  // the viewer's link before its first reports, and a layer above what the
  // link carries costs the join its first seconds: most of a 1.2 Mbit/s
  // layer's keyframe lost into a 500 kbit/s link, and a freeze. A link that
  // carries more is probed up within seconds, as any calm viewer's is.
  static unsigned start(const Rates &rates, unsigned first, uint64_t start_bitrate);
  // Each layer's rate now, kept in the order of the layers' peaks: a layer
  // whose peak is higher is raised to just above every lower one. One
  // second's measure of a layer whose encoder fell behind (beside a busy
  // loop) can drop under a smaller layer's, and a move down by the rates
  // alone then went to the top layer (browser-layers, 2026-12-06 13:52).
  static Rates in_peak_order(const Rates &now, const Rates &peaks);

  // The viewer's video starts now (on its first layer). Without it, no
  // first estimate is taken for overuse.
  void on_start(Clock::time_point now);
  // The receiver's estimate (REMB), bits/s.
  void on_estimate(Clock::time_point now, uint64_t bits_per_second);
  // A receiver report block about the viewer's video: loss since the last.
  void on_loss(Clock::time_point now, double fraction_lost);
  // One about the padding that probes its link (its RTX stream).
  void on_padding_loss(Clock::time_point now, double fraction_lost);
  // The same from a report block's counts (RFC 3550: cumulative number
  // lost, extended highest sequence number), as loss over loss_window.
  void on_video_report(Clock::time_point now, int32_t cumulative_lost, uint32_t highest_seq);
  void on_padding_report(Clock::time_point now, int32_t cumulative_lost, uint32_t highest_seq);
  // Sequence numbers of its video the viewer asked again for (RTCP NACK).
  // The reports' counts are net of what retransmissions repaired: a viewer
  // whose link is full loses its packets, NACKs them, and our answers
  // arrive late (a freeze) yet cut its reported loss under 10 % while the
  // link stays full (browser-layers: 8.7 s on a 500 kbit/s layer through a
  // 500 kbit/s link, round trip 330 ms). The first NACK of each packet is
  // what the link lost, and the window's loss is the larger of the two.
  void on_nack(const std::vector<uint16_t> &seqs);
  // A round trip a report block measured, seconds.
  void on_round_trip(Clock::time_point now, double seconds);
  // The layer the viewer should be on (or kPaused), given what each layer
  // carries and the layer it is on or moving to (or kPaused). `current`
  // when nothing changes or the layer is pinned. A padding probe starts
  // only if its full rate fits in the bits/s `padding_room` returns (what
  // the sender lets all probes take, less those under way; asked only when
  // a probe would start, empty: no limit); else it waits for room.
  unsigned choose(Clock::time_point now, const Rates &rates, unsigned current,
                  const std::function<uint64_t()> &padding_room = {});

  void pin(bool pinned);
  bool pinned() const;
  // What the viewer's network is believed to carry, bits/s (0: unknown):
  // its REMB, lowered after heavy loss.
  uint64_t estimate(Clock::time_point now) const;
  unsigned moves() const;
  // Padding to send now, bits/s (0: none), as of the last choose(), and
  // what it rises to.
  uint64_t padding() const;
  uint64_t padding_full() const;
  // Padding probes begun, and those failed (the viewer stayed).
  unsigned padding_probes() const;
  unsigned padding_probes_failed() const;

 private:
  // Loss over a window of reports, from their counts.
  struct LossWindow {
    bool started = false;
    int32_t lost = 0;
    uint32_t highest = 0;
    uint64_t nacked = 0;
    Clock::time_point since{};
    // The share lost since the window began (the reports' loss or the
    // packets NACKed, the larger), once it spans `span` (-1 before; the
    // next window then begins).
    double add(Clock::time_point now, int32_t lost, uint32_t highest, uint64_t nacked,
               std::chrono::milliseconds span);
  };
  void on_loss_locked(Clock::time_point now, double fraction_lost);
  void on_padding_loss_locked(double fraction_lost);
  uint64_t estimate_locked(Clock::time_point now) const;
  // The shortest round trip of the last 5-10 s, seconds (-1: none).
  double rtt_floor_locked() const;
  // In the first seconds after a move up (or a resume): a probe still judged.
  bool probing_locked(Clock::time_point now) const;
  // A padding probe under way: the padding now, or, when it failed or
  // passed, its end (returns the layer to go to).
  unsigned pad_locked(Clock::time_point now, const Rates &rates, unsigned current);
  void end_padding_locked(Clock::time_point now, bool failed);

  Config config_;
  mutable std::mutex mutex_;
  bool pinned_ = false;
  uint64_t remb_ = 0;
  Clock::time_point remb_at_{};
  bool remb_fell_ = false;  // since the last choice
  Clock::time_point started_{};
  // When the first estimate came, if before the receiver's own start-up
  // ended (none: it did not, or the viewer has moved since).
  Clock::time_point early_at_{};
  bool congested_ = false;  // the estimate fell under the layer's rate, and stays under
  Clock::time_point congested_since_{};
  unsigned heavy_in_a_row_ = 0;
  double last_loss_ = 0;
  bool too_much_ = false;  // heavy loss on the current layer: go down
  Clock::time_point calm_since_{};
  bool calm_ = false;
  Clock::time_point last_up_{}, last_down_{}, last_move_{};
  // The layer a move up (a probe) left, which fitted: where a failed probe
  // goes back to (kMaxLayers: none).
  unsigned probed_from_ = kMaxLayers;
  std::chrono::milliseconds backoff_{0};
  bool last_down_was_failed_switch_ = false;
  unsigned moves_ = 0;

  // The padding probe (the layer it is for; kMaxLayers: none).
  unsigned padding_for_ = kMaxLayers;
  Clock::time_point padding_since_{};
  uint64_t padding_ = 0;       // sent now
  uint64_t padding_full_ = 0;  // at the top of the ramp
  uint64_t padding_carried_ = 0;  // sent before the last report that did not fail it
  bool padding_failed_ = false;  // by a report since the last choice
  uint64_t remb_at_padding_ = 0;  // the estimate when it began
  // Reports just after one describe it, not the layer.
  Clock::time_point padding_ended_{};
  Clock::time_point next_padding_{};
  std::chrono::milliseconds padding_backoff_{0};
  unsigned padding_probes_ = 0, padding_failures_ = 0;
  LossWindow video_window_, padding_window_;
  // Video packets NACKed for the first time, and the newest of them.
  uint64_t nacked_ = 0;
  bool any_nacked_ = false;
  uint16_t newest_nacked_ = 0;
  // The shortest round trip of the last 5-10 s (two buckets of 5 s), and
  // that when the padding began (-1: none).
  double rtt_min_ = -1, rtt_min_before_ = -1, rtt_last_ = -1;
  Clock::time_point rtt_bucket_since_{};
  double rtt_at_padding_ = -1;
  // Since when the round trips under the full padding have been over
  // padding_burst (none: the last was not).
  Clock::time_point rtt_over_since_{};
};

}  // namespace wb
