-- Top 10 entities (type + surface form) per article category, by number of mentions.
WITH counted AS (
  SELECT a.category, e.label AS entity_type, e.span AS entity, COUNT(*) AS mentions,
         COUNT(DISTINCT e.article_id) AS articles
  FROM entities e
  JOIN articles a ON a.article_id = e.article_id AND a.pipeline_hash = e.pipeline_hash
  GROUP BY a.category, e.label, e.span
)
SELECT category, entity_type, entity, mentions, articles, rank
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY category ORDER BY mentions DESC, entity) AS rank FROM counted
)
WHERE rank <= 10
ORDER BY category, rank
