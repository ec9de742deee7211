#include "jobs/data/movielens.h"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <unordered_map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/text_encoding.h"

namespace tallrec {
namespace {

struct Rating {
  std::string_view movie_id;
  double rating;
  bool liked;
  std::string_view timestamp;  // raw text, compared as a string like TALLRec does
};

struct Window {
  std::string_view user;
  std::vector<std::string_view> history_movies;
  std::vector<bool> history_liked;
  std::vector<double> history_ratings;
  std::string_view target_movie;
  double target_rating;
  bool target_liked;
};

// Splits `text` into lines the way Python's readlines() does for "\n" files; the returned
// views exclude the newline. A final line without "\n" is kept.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  for (;;) {
    size_t end = line.find(sep, start);
    if (end == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return fields;
    }
    fields.push_back(line.substr(start, end - start));
    start = end + 1;
  }
}

long parse_integer(std::string_view field, const std::string& path, size_t line, const char* what) {
  std::string_view trimmed = field;
  while (!trimmed.empty() && (trimmed.back() == '\r' || trimmed.back() == ' '))
    trimmed.remove_suffix(1);
  long value = 0;
  auto [end, ec] = std::from_chars(trimmed.data(), trimmed.data() + trimmed.size(), value);
  if (ec != std::errc() || end != trimmed.data() + trimmed.size() || trimmed.empty()) {
    throw input_error_at(
        path, line, std::string("bad number for ") + what + ": \"" + std::string(field) + "\"");
  }
  return value;
}

// u.item: "id|title|release date|...". Returns titles (UTF-8) in line order.
std::vector<std::string> read_titles(const std::filesystem::path& path, const std::string& raw) {
  if (looks_like_utf8_multibyte(raw)) {
    throw InputError(path.string() +
                     ": bad encoding: the file is UTF-8, but MovieLens-100K's u.item "
                     "is Latin-1 (ISO-8859-1); use the original file");
  }
  std::vector<std::string> titles;
  auto lines = split_lines(raw);
  for (size_t i = 0; i < lines.size(); ++i) {
    auto fields = split(lines[i], '|');
    if (fields.size() < 2) {
      throw input_error_at(
          path.string(), i + 1,
          "expected at least 2 '|'-separated columns, found " + std::to_string(fields.size()));
    }
    long id = parse_integer(fields[0], path.string(), i + 1, "movie id");
    if (id != long(i) + 1) {
      // TALLRec looks titles up by position; a file out of order would silently mislabel.
      throw input_error_at(
          path.string(), i + 1,
          "movie id " + std::to_string(id) + " out of order: expected " + std::to_string(i + 1));
    }
    titles.push_back(latin1_to_utf8(fields[1]));
  }
  return titles;
}

}  // namespace

Splits prepare_movielens(const std::filesystem::path& raw_dir, const MovieLensOptions& options) {
  const auto data_path = raw_dir / "u.data";
  const auto item_path = raw_dir / "u.item";
  const std::string item_raw = read_file(item_path);
  const std::string data_raw = read_file(data_path);
  const std::vector<std::string> titles = read_titles(item_path, item_raw);

  if (size_t bad = find_invalid_utf8(data_raw); bad != std::string::npos) {
    size_t line =
        1 + size_t(std::count(data_raw.begin(), data_raw.begin() + std::ptrdiff_t(bad), '\n'));
    throw input_error_at(data_path.string(), line, "bad encoding: byte is not valid UTF-8/ASCII");
  }

  // Users in order of first appearance, each with ratings in file order.
  std::vector<std::string_view> user_order;
  std::unordered_map<std::string_view, std::vector<Rating>> by_user;
  auto lines = split_lines(data_raw);
  for (size_t i = 0; i < lines.size(); ++i) {
    auto fields = split(lines[i], '\t');
    if (fields.size() != 4) {
      throw input_error_at(data_path.string(), i + 1,
                           "expected 4 tab-separated columns "
                           "(user, movie, rating, timestamp), found " +
                               std::to_string(fields.size()));
    }
    parse_integer(fields[0], data_path.string(), i + 1, "user id");
    long movie = parse_integer(fields[1], data_path.string(), i + 1, "movie id");
    long rating = parse_integer(fields[2], data_path.string(), i + 1, "rating");
    parse_integer(fields[3], data_path.string(), i + 1, "timestamp");
    if (movie < 1 || size_t(movie) > titles.size()) {
      throw input_error_at(data_path.string(), i + 1,
                           "movie id " + std::to_string(movie) + " is not in u.item");
    }
    auto [it, inserted] = by_user.try_emplace(fields[0]);
    if (inserted) user_order.push_back(fields[0]);
    it->second.push_back({fields[1], double(rating), rating > 3, fields[3]});
  }

  std::vector<Window> windows;
  const size_t h = options.history_length;
  for (auto user : user_order) {
    auto& ratings = by_user[user];
    std::stable_sort(ratings.begin(), ratings.end(),
                     [](const Rating& a, const Rating& b) { return a.timestamp < b.timestamp; });
    for (size_t i = h; i < ratings.size(); ++i) {
      Window w;
      w.user = user;
      for (size_t k = i - h; k < i; ++k) {
        w.history_movies.push_back(ratings[k].movie_id);
        w.history_liked.push_back(ratings[k].liked);
        w.history_ratings.push_back(ratings[k].rating);
      }
      w.target_movie = ratings[i].movie_id;
      w.target_rating = ratings[i].rating;
      w.target_liked = ratings[i].liked;
      windows.push_back(std::move(w));
    }
  }
  if (windows.size() > options.max_windows) {
    windows.erase(windows.begin(), windows.end() - std::ptrdiff_t(options.max_windows));
  }

  auto title_of = [&](std::string_view movie_id) -> const std::string& {
    long id = 0;
    std::from_chars(movie_id.data(), movie_id.data() + movie_id.size(), id);
    return titles[size_t(id - 1)];
  };
  auto quoted_list = [&](const std::vector<std::string_view>& movies,
                         const std::vector<bool>& liked, bool want) {
    std::string out;
    for (size_t k = 0; k < movies.size(); ++k) {
      if (liked[k] != want) continue;
      if (!out.empty()) out += ", ";
      out += "\"" + title_of(movies[k]) + "\"";
    }
    return out;
  };

  std::vector<PromptRecord> records;
  std::vector<InteractionRecord> interactions;
  records.reserve(windows.size());
  interactions.reserve(windows.size());
  for (const auto& w : windows) {
    interactions.push_back({std::string(w.user),
                            {w.history_movies.begin(), w.history_movies.end()},
                            w.history_ratings,
                            std::string(w.target_movie),
                            w.target_rating,
                            w.target_liked ? 1 : 0});
    PromptRecord r;
    r.instruction =
        "Given the user's preference and unpreference, identify whether the user will like the "
        "target movie by answering \"Yes.\" or \"No.\".";
    r.input = "User Preference: " + quoted_list(w.history_movies, w.history_liked, true) +
              "\nUser Unpreference: " + quoted_list(w.history_movies, w.history_liked, false) +
              "\nWhether the user will like the target movie \"" + title_of(w.target_movie) + "\"?";
    r.output = w.target_liked ? "Yes." : "No.";
    records.push_back(std::move(r));
  }

  // Python's int(len * 0.8) and int(len * 0.9) on doubles.
  const size_t n = records.size();
  const size_t train_end = size_t(double(n) * 0.8);
  const size_t valid_end = size_t(double(n) * 0.9);
  Splits splits;
  auto split = [&](const auto& all, auto& train, auto& valid, auto& test) {
    train.assign(all.begin(), all.begin() + std::ptrdiff_t(train_end));
    valid.assign(all.begin() + std::ptrdiff_t(train_end), all.begin() + std::ptrdiff_t(valid_end));
    test.assign(all.begin() + std::ptrdiff_t(valid_end), all.end());
  };
  split(records, splits.train, splits.valid, splits.test);
  split(interactions, splits.interactions.train, splits.interactions.valid,
        splits.interactions.test);
  return splits;
}

}  // namespace tallrec
