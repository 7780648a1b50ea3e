-- Text-level labels per publication day and task: what the news was about, day by day.
-- Counts sentences (one extraction row per sentence x task) with a parsed text label.
SELECT
  x.published_date,
  x.task,
  x.text_label,
  COUNT(*) AS sentences,
  COUNT(DISTINCT x.article_id) AS articles
FROM extractions x
WHERE x.text_label IS NOT NULL
GROUP BY x.published_date, x.task, x.text_label
ORDER BY x.published_date, x.task, sentences DESC, x.text_label
