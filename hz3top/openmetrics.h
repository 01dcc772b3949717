// hz3top --openmetrics: the counters and rates of every watched process as OpenMetrics text
// (docs/openmetrics.md) or the Prometheus text format, as the scraper's Accept header asks,
// served on GET /metrics by a small single-threaded HTTP/1.1 server that
// hz3top's report loop polls between reports. It is not a general web server: one request per
// connection, no TLS, no authentication (hence 127.0.0.1 by default), request bodies ignored.
#pragma once

#include <cstdint>
#include <string>

#include "model.h"

namespace hz3top {

constexpr const char* OPENMETRICS_DEFAULT_ADDR = "127.0.0.1:9464";
constexpr const char* OPENMETRICS_CONTENT_TYPE =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

constexpr const char* PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricsFormat { OPENMETRICS, PROMETHEUS };

// The exposition of one report: counters since hz3top attached to each process (with their
// _created time in OpenMetrics), live memory and the hit ratio of the last interval as gauges
// (docs/openmetrics.md lists them). OpenMetrics 1.0 (# UNIT, info, # EOF) or the Prometheus
// text format 0.0.4. `r` null: no report yet (families are still declared); `started`: unix
// time hz3top started (the _created of hz3top_reports; 0: none).
std::string render_metrics(const Report* r, uint64_t reports, double started, MetricsFormat f);
// render_metrics in OpenMetrics, without a start time.
std::string render_openmetrics(const Report* r, uint64_t reports);
// The format an Accept header asks for: the Prometheus text format when it names text/plain and
// not application/openmetrics-text, else OpenMetrics.
MetricsFormat negotiate_format(const std::string& accept);
// A label value: valid UTF-8 (each bad byte replaced by U+FFFD, as in the JSON output), with
// \\, \" and \n escaped.
std::string openmetrics_escape(const std::string& v);

class MetricsServer {
 public:
  MetricsServer() = default;
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds `addr_port`: "IPV4:PORT", "[IPV6]:PORT", "NAME:PORT" (resolved; the first address
  // that binds), or ":PORT" (every interface); port 0 takes a free one. False with err.
  bool listen(const std::string& addr_port, std::string* err);
  // The address actually bound, as "127.0.0.1:9464".
  const std::string& bound() const { return bound_; }
  // What GET /metrics serves from now on, in both formats.
  void set_report(const Report* r, uint64_t reports, double started) {
    body_ = render_metrics(r, reports, started, MetricsFormat::OPENMETRICS);
    prometheus_body_ = render_metrics(r, reports, started, MetricsFormat::PROMETHEUS);
  }
  // Waits up to `timeout_ms` for connections and answers each (a slow client is given 1 s).
  void serve(int timeout_ms);
  uint64_t requests() const { return requests_; }

 private:
  void handle(int fd);
  int fd_ = -1;
  std::string bound_, body_, prometheus_body_;
  uint64_t requests_ = 0;
};

// Parses "HOST:PORT" as --openmetrics takes it (HOST may be empty: every interface; an IPv6
// address in brackets); false with err when malformed.
bool parse_listen_addr(const std::string& s, std::string* host, int* port, std::string* err);

}  // namespace hz3top
