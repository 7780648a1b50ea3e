-- Entity counts per sentence-level text label and entity type, most frequent first.
-- Tables are the job's Delta tables, registered as views by `giellm-batch sql` (or by hand:
--   CREATE TEMPORARY VIEW entities USING delta OPTIONS (path '<warehouse>/entities');).
SELECT
  e.text_label,
  e.label            AS entity_type,
  COUNT(*)           AS mentions,
  COUNT(DISTINCT COALESCE(e.span_key, e.span)) AS distinct_entities,  -- normalised keys (NFKC, width/case)
  SUM(CASE WHEN e.grounded THEN 1 ELSE 0 END) AS grounded_mentions
FROM entities e
JOIN articles a
  ON a.article_id = e.article_id AND a.pipeline_hash = e.pipeline_hash
GROUP BY e.text_label, e.label
ORDER BY mentions DESC, e.text_label, entity_type
