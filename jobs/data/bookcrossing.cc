#include "jobs/data/bookcrossing.h"

#include <charconv>
#include <cmath>
#include <unordered_map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/text_encoding.h"
#include "jobs/data/python_random.h"
#include "jobs/data/semicolon_csv.h"

namespace tallrec {
namespace {

struct Book {
  std::string title, author;  // UTF-8
};

struct Rating {
  std::string user;
  std::string isbn;
  double value;
  size_t line;
};

struct UserHistory {
  std::vector<bool> liked;
  std::vector<const Book*> books;
  std::vector<std::string> isbns;  // each book's, for the interaction records
  std::vector<double> ratings;
};

void expect_header(const std::vector<CsvRow>& rows, const std::string& path,
                   const std::vector<std::string>& wanted_prefix) {
  if (rows.empty()) throw InputError(path + ": empty file (expected a header row)");
  const auto& header = rows.front().fields;
  for (size_t i = 0; i < wanted_prefix.size(); ++i) {
    if (i >= header.size() || header[i] != wanted_prefix[i]) {
      throw input_error_at(path, rows.front().line,
                           "expected column " + std::to_string(i + 1) + " to be \"" +
                               wanted_prefix[i] + "\", found \"" +
                               (i < header.size() ? header[i] : std::string()) + "\"");
    }
  }
}

double parse_rating(const std::string& field, const std::string& path, size_t line) {
  double value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size() ||
      !std::isfinite(value)) {
    throw input_error_at(path, line, "bad number for Book-Rating: \"" + field + "\"");
  }
  return value;
}

std::string read_latin1_csv_text(const std::filesystem::path& path) {
  std::string raw = read_file(path);
  if (looks_like_utf8_multibyte(raw)) {
    throw InputError(path.string() +
                     ": bad encoding: the file is UTF-8, but the Book-Crossing dump "
                     "is Latin-1 (ISO-8859-1); use the original file");
  }
  return raw;
}

}  // namespace

Splits prepare_bookcrossing(const std::filesystem::path& raw_dir,
                            const BookCrossingOptions& options) {
  const auto ratings_path = (raw_dir / "BX-Book-Ratings.csv").string();
  const auto books_path = (raw_dir / "BX-Books.csv").string();
  const std::string ratings_raw = read_latin1_csv_text(ratings_path);
  const std::string books_raw = read_latin1_csv_text(books_path);

  // Books: ISBN -> every row with that ISBN, in file order (an inner join pairs each).
  auto book_rows = parse_semicolon_csv(books_raw, books_path);
  expect_header(book_rows, books_path, {"ISBN", "Book-Title", "Book-Author"});
  const size_t book_columns = book_rows.front().fields.size();
  std::vector<Book> books;
  std::vector<std::string> book_isbns;
  books.reserve(book_rows.size());
  for (size_t r = 1; r < book_rows.size(); ++r) {
    auto& fields = book_rows[r].fields;
    if (fields.size() > book_columns) {
      if (options.warn) {
        options.warn(books_path + ":" + std::to_string(book_rows[r].line) + ": skipped: expected " +
                     std::to_string(book_columns) + " fields, saw " +
                     std::to_string(fields.size()));
      }
      continue;
    }
    fields.resize(book_columns);  // pandas pads short rows (with NaN; see docs/dev/data.md)
    books.push_back({latin1_to_utf8(fields[1]), latin1_to_utf8(fields[2])});
    book_isbns.push_back(fields[0]);
  }
  std::unordered_map<std::string, std::vector<const Book*>> books_by_isbn;
  for (size_t i = 0; i < books.size(); ++i) books_by_isbn[book_isbns[i]].push_back(&books[i]);

  // Ratings, grouped by ISBN in order of first appearance (pandas 1.x inner-join order).
  auto rating_rows = parse_semicolon_csv(ratings_raw, ratings_path);
  expect_header(rating_rows, ratings_path, {"User-ID", "ISBN", "Book-Rating"});
  std::vector<std::string> isbn_order;
  std::unordered_map<std::string, std::vector<Rating>> ratings_by_isbn;
  for (size_t r = 1; r < rating_rows.size(); ++r) {
    const auto& row = rating_rows[r];
    if (row.fields.size() != 3) {
      throw input_error_at(
          ratings_path, row.line,
          "expected 3 fields (User-ID;ISBN;Book-Rating), saw " + std::to_string(row.fields.size()));
    }
    long user_id = 0;
    const auto& u = row.fields[0];
    auto [end, ec] = std::from_chars(u.data(), u.data() + u.size(), user_id);
    if (u.empty() || ec != std::errc() || end != u.data() + u.size()) {
      throw input_error_at(ratings_path, row.line,
                           "bad number for User-ID: \"" + latin1_to_utf8(u) + "\"");
    }
    Rating rating{u, row.fields[1], parse_rating(row.fields[2], ratings_path, row.line), row.line};
    auto [it, inserted] = ratings_by_isbn.try_emplace(rating.isbn);
    if (inserted) isbn_order.push_back(rating.isbn);
    it->second.push_back(std::move(rating));
  }

  std::vector<std::string> user_order;
  std::unordered_map<std::string, UserHistory> histories;
  for (const auto& isbn : isbn_order) {
    auto match = books_by_isbn.find(isbn);
    if (match == books_by_isbn.end()) continue;
    for (const auto& rating : ratings_by_isbn[isbn]) {
      for (const Book* book : match->second) {
        auto [it, inserted] = histories.try_emplace(rating.user);
        if (inserted) user_order.push_back(rating.user);
        it->second.liked.push_back(rating.value > 5);
        it->second.books.push_back(book);
        it->second.isbns.push_back(isbn);
        it->second.ratings.push_back(rating.value);
      }
    }
  }

  std::vector<std::string> users;
  for (const auto& user : user_order) {
    if (histories[user].books.size() > size_t(options.min_ratings_exclusive)) users.push_back(user);
  }
  PythonRandom split_rng(options.split_seed);
  split_rng.shuffle(users);

  // The prompt record and the interactions behind it, from the same draw.
  auto make_record = [&](const std::string& user, const UserHistory& h,
                         InteractionRecord& interactions) {
    const size_t n = h.books.size();
    const auto order = python_shuffled_indices(n, 42);  // random.seed(42); random.shuffle(...)
    std::string preference, unpreference;
    interactions.user = user;
    for (size_t k = 0; k < std::min(n - 1, options.max_history); ++k) {
      interactions.history.push_back(h.isbns[order[k]]);
      interactions.history_ratings.push_back(h.ratings[order[k]]);
      const Book& book = *h.books[order[k]];
      std::string& list = h.liked[order[k]] ? preference : unpreference;
      if (!list.empty()) list += ", ";
      list += "\"" + book.title + "\" written by " + book.author;
    }
    const Book& target = *h.books[order[n - 1]];
    PromptRecord r;
    r.instruction =
        "Given the user's preference and unpreference, identify whether the user will like the "
        "target book by answering \"Yes.\" or \"No.\".";
    r.input = "User Preference: " + preference + "\nUser Unpreference: " + unpreference +
              "\nWhether the user will like the target book \"\"" + target.title +
              "\" written by " + target.author + "\"?";
    r.output = h.liked[order[n - 1]] ? "Yes." : "No.";
    interactions.target = h.isbns[order[n - 1]];
    interactions.target_rating = h.ratings[order[n - 1]];
    interactions.label = h.liked[order[n - 1]] ? 1 : 0;
    return r;
  };

  const size_t n = users.size();
  const size_t train_end = size_t(double(n) * 0.8), valid_end = size_t(double(n) * 0.9);
  Splits splits;
  for (size_t i = 0; i < n; ++i) {
    auto& part = i < train_end ? splits.train : i < valid_end ? splits.valid : splits.test;
    auto& part_interactions = i < train_end   ? splits.interactions.train
                              : i < valid_end ? splits.interactions.valid
                                              : splits.interactions.test;
    part.push_back(make_record(users[i], histories[users[i]], part_interactions.emplace_back()));
  }
  return splits;
}

}  // namespace tallrec
