//===- BenchPlot.cpp - moe-run bench SVG plot -----------------------------===//
//
// The SVG plot of `moe-run ARTIFACT bench --plot=FILE`: generated tokens
// over time, and the CDFs of time to first token and request latency.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/BenchInternal.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace moert::bench {

//===----------------------------------------------------------------------===//
// SVG plot
//===----------------------------------------------------------------------===//

namespace {

/// Round tick steps (1, 2, 5 x 10^k) that cut [0, max] into about 5 parts.
double tickStep(double max) {
  if (!(max > 0))
    return 1;
  double raw = max / 5, power = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw)
      return m * power;
  return 10 * power;
}

std::string fmt(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

std::string xmlEscape(const std::string &text) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

/// A panel of a line chart: axes from 0 to xMax / yMax with ticks and labels.
struct Panel {
  double left, top, width, height, xMax, yMax;
  double x(double v) const { return left + width * v / xMax; }
  double y(double v) const { return top + height * (1 - v / yMax); }

  void axes(std::ostringstream &out, const std::string &title,
            const std::string &xLabel, const std::string &yLabel) const {
    out << "<text x=\"" << fmt(left + width / 2) << "\" y=\"" << fmt(top - 10)
        << "\" text-anchor=\"middle\" font-weight=\"bold\">" << xmlEscape(title)
        << "</text>\n";
    out << "<rect x=\"" << fmt(left) << "\" y=\"" << fmt(top) << "\" width=\""
        << fmt(width) << "\" height=\"" << fmt(height)
        << "\" fill=\"none\" stroke=\"#444\"/>\n";
    double xs = tickStep(xMax), ys = tickStep(yMax);
    for (double v = 0; v <= xMax * (1 + 1e-9); v += xs)
      out << "<line x1=\"" << fmt(x(v)) << "\" y1=\"" << fmt(top + height)
          << "\" x2=\"" << fmt(x(v)) << "\" y2=\"" << fmt(top)
          << "\" stroke=\"#ddd\"/>\n<text x=\"" << fmt(x(v)) << "\" y=\""
          << fmt(top + height + 14) << "\" text-anchor=\"middle\">" << fmt(v)
          << "</text>\n";
    for (double v = 0; v <= yMax * (1 + 1e-9); v += ys)
      out << "<line x1=\"" << fmt(left) << "\" y1=\"" << fmt(y(v)) << "\" x2=\""
          << fmt(left + width) << "\" y2=\"" << fmt(y(v))
          << "\" stroke=\"#ddd\"/>\n<text x=\"" << fmt(left - 5) << "\" y=\""
          << fmt(y(v) + 4) << "\" text-anchor=\"end\">" << fmt(v)
          << "</text>\n";
    out << "<text x=\"" << fmt(left + width / 2) << "\" y=\""
        << fmt(top + height + 32) << "\" text-anchor=\"middle\">"
        << xmlEscape(xLabel) << "</text>\n";
    out << "<text transform=\"translate(" << fmt(left - 42) << ","
        << fmt(top + height / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
        << xmlEscape(yLabel) << "</text>\n";
  }

  /// A polyline through (xs[i], ys[i]), at most ~2000 points.
  void line(std::ostringstream &out, const std::vector<double> &xs,
            const std::vector<double> &ys, const char *color) const {
    if (xs.empty())
      return;
    size_t stride = std::max<size_t>(1, xs.size() / 2000);
    out << "<polyline fill=\"none\" stroke=\"" << color
        << "\" stroke-width=\"1.5\" points=\"";
    for (size_t i = 0; i < xs.size(); i += stride)
      out << fmt(x(xs[i])) << "," << fmt(y(ys[i])) << " ";
    out << fmt(x(xs.back())) << "," << fmt(y(ys.back())) << "\"/>\n";
  }
};

} // namespace

std::string plotSvg(const BenchOptions &o, const RunInfo &info,
                    const RunResult &r, const Summary &s) {
  std::ostringstream out;
  const double w = 900, h = 360;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w
      << "\" height=\"" << h << "\" viewBox=\"0 0 " << w << " " << h
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  out << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  char title[256];
  std::snprintf(title, sizeof title,
                "moe-run bench: %s, %s batching, %lld requests: %.1f "
                "generated tokens/s, %lld steps",
                info.modelName.c_str(),
                o.mode == Mode::Static ? "static" : "continuous",
                static_cast<long long>(o.requests), s.generatedPerSecond,
                static_cast<long long>(r.steps));
  out << "<text x=\"" << w / 2 << "\" y=\"18\" text-anchor=\"middle\" "
      << "font-size=\"13\">" << xmlEscape(title) << "</text>\n";

  // Generated tokens over time, from (0, 0).
  std::vector<double> times{0}, tokens{0};
  for (const StepSample &step : r.timeline) {
    times.push_back(step.end);
    tokens.push_back(static_cast<double>(step.generated));
  }
  Panel left{70,
             50,
             340,
             250,
             r.duration > 0 ? r.duration : 1,
             std::max(1.0, tokens.back())};
  left.axes(out, "generated tokens over time", "time (s)", "tokens generated");
  left.line(out, times, tokens, "#1f77b4");

  // CDFs, in milliseconds.
  auto cdf = [](const std::vector<double> &sorted, std::vector<double> &xs,
                std::vector<double> &ys) {
    xs = {0};
    ys = {0};
    for (size_t i = 0; i < sorted.size(); ++i) {
      xs.push_back(sorted[i] * 1e3);
      ys.push_back(static_cast<double>(i) / sorted.size());
      xs.push_back(sorted[i] * 1e3);
      ys.push_back(static_cast<double>(i + 1) / sorted.size());
    }
  };
  std::vector<double> ttftX, ttftY, latX, latY;
  cdf(s.ttft, ttftX, ttftY);
  cdf(s.latency, latX, latY);
  double xMax = s.latency.empty() ? 1 : s.latency.back() * 1e3;
  Panel right{520, 50, 340, 250, xMax > 0 ? xMax : 1, 1};
  right.axes(out, "request CDFs", "milliseconds since arrival",
             "fraction of requests");
  right.line(out, ttftX, ttftY, "#d62728");
  right.line(out, latX, latY, "#2ca02c");
  out << "<text x=\"" << fmt(right.left + right.width - 6) << "\" y=\""
      << fmt(right.top + right.height - 26) << "\" text-anchor=\"end\" "
      << "fill=\"#d62728\">time to first token</text>\n";
  out << "<text x=\"" << fmt(right.left + right.width - 6) << "\" y=\""
      << fmt(right.top + right.height - 12) << "\" text-anchor=\"end\" "
      << "fill=\"#2ca02c\">request latency</text>\n";
  out << "</svg>\n";
  return out.str();
}

} // namespace moert::bench
