-- Sentiment over time: share of positive (積極) sentence labels per day, and the polarity of
-- extracted sentiment words. Sentence labels come from the SCPOS tasks' text label.
SELECT
  x.published_date,
  COUNT(*) AS labelled_sentences,
  SUM(CASE WHEN x.text_label = '積極' THEN 1 ELSE 0 END) AS positive_sentences,
  SUM(CASE WHEN x.text_label = '消極' THEN 1 ELSE 0 END) AS negative_sentences,
  ROUND(AVG(CASE WHEN x.text_label = '積極' THEN 1.0 ELSE 0.0 END), 4) AS positive_share,
  MAX(w.words) AS sentiment_words
FROM extractions x
LEFT JOIN (
  SELECT published_date, COUNT(*) AS words FROM sentiment_words GROUP BY published_date
) w ON w.published_date IS NOT DISTINCT FROM x.published_date  -- NULL-safe `=`; Spark's `<=>` is not DuckDB's
WHERE x.task LIKE 'scpos%' AND x.text_label IS NOT NULL
GROUP BY x.published_date
ORDER BY x.published_date
