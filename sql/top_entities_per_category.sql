-- Top 10 entities per article category, by number of mentions. Mentions are grouped by the
-- normalised key (span_key: NFKC, width/case/space-folded), so ｿﾌﾄﾊﾞﾝｸ and ソフトバンク count
-- together; `entity` shows the surface form written most often, `surface_forms` how many there were.
-- (COALESCE: rows written before span_key existed group by their surface form.)
WITH counted AS (
  SELECT a.category, e.label AS entity_type, COALESCE(e.span_key, e.span) AS entity_key,
         MODE(e.span) AS entity, COUNT(DISTINCT e.span) AS surface_forms, COUNT(*) AS mentions,
         COUNT(DISTINCT e.article_id) AS articles
  FROM entities e
  JOIN articles a ON a.article_id = e.article_id AND a.pipeline_hash = e.pipeline_hash
  GROUP BY a.category, e.label, COALESCE(e.span_key, e.span)
)
SELECT category, entity_type, entity, entity_key, surface_forms, mentions, articles, rank
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY category ORDER BY mentions DESC, entity_key) AS rank FROM counted
)
WHERE rank <= 10
ORDER BY category, rank
