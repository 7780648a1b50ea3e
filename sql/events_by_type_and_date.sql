-- Events by type and publication day; `arguments` holds each event's role/text/offsets.
SELECT
  v.published_date,
  v.event_type,
  COUNT(*) AS events,
  COUNT(DISTINCT v.article_id) AS articles,
  SUM(CASE WHEN v.grounded THEN 1 ELSE 0 END) AS fully_grounded
FROM events v
GROUP BY v.published_date, v.event_type
ORDER BY v.published_date, events DESC, v.event_type
