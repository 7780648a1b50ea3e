-- Top 10 entities per article category, by number of mentions. Mentions are grouped by the
-- normalised key (span_key: NFKC, width/case/space-folded), so ｿﾌﾄﾊﾞﾝｸ and ソフトバンク count
-- together; `entity` shows the surface form written most often (ties: the first in code-point
-- order), `surface_forms` how many there were.
-- (COALESCE: rows written before span_key existed group by their surface form.)
-- Plain SQL that Spark and DuckDB both run alike (no MODE: its tie-break differs between engines).
WITH keyed AS (
  SELECT a.category, e.label AS entity_type, COALESCE(e.span_key, e.span) AS entity_key, e.span, e.article_id
  FROM entities e
  JOIN articles a ON a.article_id = e.article_id AND a.pipeline_hash = e.pipeline_hash
),
counted AS (
  SELECT category, entity_type, entity_key, COUNT(DISTINCT span) AS surface_forms, COUNT(*) AS mentions,
         COUNT(DISTINCT article_id) AS articles
  FROM keyed
  GROUP BY category, entity_type, entity_key
),
forms AS (
  SELECT category, entity_type, entity_key, span AS entity,
         ROW_NUMBER() OVER (PARTITION BY category, entity_type, entity_key ORDER BY COUNT(*) DESC, span) AS n
  FROM keyed
  GROUP BY category, entity_type, entity_key, span
),
ranked AS (
  SELECT c.*, f.entity,
         ROW_NUMBER() OVER (PARTITION BY c.category ORDER BY c.mentions DESC, c.entity_key, c.entity_type) AS rank
  FROM counted c
  JOIN forms f ON f.n = 1 AND f.category IS NOT DISTINCT FROM c.category
              AND f.entity_type IS NOT DISTINCT FROM c.entity_type AND f.entity_key IS NOT DISTINCT FROM c.entity_key
)
SELECT category, entity_type, entity, entity_key, surface_forms, mentions, articles, rank
FROM ranked
WHERE rank <= 10
ORDER BY category, rank
