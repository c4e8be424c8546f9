#!/usr/bin/env python3
# Writes URL lists per (setup, family) into urls/SETUP-FAMILY.txt
import os, urllib.parse as up
q = up.quote_plus
OUT = "urls"
lists = {}
def add(setup, fam, *urls):
    lists.setdefault((setup, fam), []).extend(urls)

def tilde(s):
    safe = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    out = []
    for b in s.encode():
        if b in safe: out.append(chr(b))
        elif b == 32: out.append("+")
        else: out.append("~%02X" % b)
    return "".join(out)

# ---------- fixtures ----------
F = "/fixtures"
add("fixtures", "meta", "/.json", "/fixtures.json", "/-/databases.json", "/-/metadata.json", "/-/plugins.json",
    "/-/actor.json", "/-/threads.json", "/-/config.json", "/-/versions.json", "/-/settings.json")
add("fixtures", "schema", "/-/schema.json", "/fixtures/-/schema.json", "/fixtures/facetable/-/schema.json",
    "/fixtures/simple_view/-/schema.json", "/fixtures/nope/-/schema.json", "/nope/-/schema.json",
    "/fixtures/compound_three_primary_keys/-/schema.json", "/fixtures/searchable_fts/-/schema.json")
for t in ["facetable", "sortable", "simple_primary_key", "compound_primary_key", "compound_three_primary_keys",
          "no_primary_key", "binary_data", "complex_foreign_keys", "custom_foreign_key_label", "foreign_key_references",
          "infinity", "primary_key_multiple_columns", "primary_key_multiple_columns_explicit_label",
          "roadside_attraction_characteristics", "roadside_attractions", "searchable", "searchable_tags", "select",
          "tags", "123_starts_with_digits", "facet_cities", "attraction_characteristic"]:
    add("fixtures", "table", f"{F}/{t}.json", f"{F}/{t}.json?_size=2")
add("fixtures", "table", f"{F}/table~2Fwith~2Fslashes~2Ecsv.json", f"{F}/Table+With+Space+In+Name.json",
    f"{F}/searchable_fts.json", f"{F}/searchable_fts_docsize.json")
# views
for v in ["simple_view", "paginated_view", "searchable_view", "searchable_view_configured_by_metadata"]:
    add("fixtures", "views", f"{F}/{v}.json", f"{F}/{v}.json?_size=3", f"{F}/{v}.json?_size=2&_extra=count,next_url")
add("fixtures", "views", f"{F}/paginated_view.json?_size=5&_next=5", f"{F}/paginated_view.json?_size=50&_next=150",
    f"{F}/simple_view.json?_sort=content", f"{F}/simple_view.json?content__contains=l",
    f"{F}/searchable_view.json?_search=dog&_fts_table=searchable_fts&_fts_pk=pk",
    f"{F}/paginated_view.json?_size=10&_extra=count")
# sorting & pagination
for col in ["sortable", "sortable_with_nulls", "sortable_with_nulls_2", "text"]:
    add("fixtures", "sort", f"{F}/sortable.json?_sort={col}&_size=7", f"{F}/sortable.json?_sort_desc={col}&_size=7")
add("fixtures", "sort", f"{F}/sortable.json?_sort=sortable_with_nulls&_size=3&_next=%24null%2Ch%2Cr",
    f"{F}/sortable.json?_sort_desc=sortable_with_nulls&_size=3&_next=%24null%2Cb%2Cz",
    f"{F}/no_primary_key.json?_size=3&_next=5", f"{F}/no_primary_key.json?_sort=rowid&_size=3",
    f"{F}/compound_primary_key.json?_size=1", f"{F}/compound_primary_key.json?_size=1&_next=a~2Fb%2C~2Ec-d",
    f"{F}/facetable.json?_sort=state&_size=4", f"{F}/facetable.json?_sort_desc=state&_size=4&_nocount=1",
    f"{F}/facetable.json?_size=max", f"{F}/facetable.json?_size=0", f"{F}/facetable.json?_size=3&_extra=next_url,count")
# filters
ops = [("state__exact", "CA"), ("state__not", "CA"), ("_neighborhood__contains", "o"), ("_neighborhood__notcontains", "o"),
       ("_neighborhood__endswith", "n"), ("_neighborhood__startswith", "M"), ("pk__gt", "5"), ("pk__gte", "5"),
       ("pk__lt", "3"), ("pk__lte", "3"), ("_neighborhood__like", "%25town%25"), ("_neighborhood__notlike", "%25town%25"),
       ("_neighborhood__glob", "*town*"), ("state__in", "CA,MI"), ("state__notin", "CA,MI"), ("tags__arraycontains", "tag1"),
       ("tags__arraynotcontains", "tag1"), ("created__date", "2019-01-14"), ("complex_array__isnull", "1"),
       ("complex_array__notnull", "1"), ("n__isblank", "1"), ("n__notblank", "1"), ("on_earth", "1"),
       ("_city_id", "1"), ("_city_id__exact", "2"), ("state", "CA&_city_id=1"), ("pk__in", "%5B1%2C2%5D")]
for k, v in ops:
    add("fixtures", "filters", f"{F}/facetable.json?{k}={v}")
    add("fixtures", "filters", f"{F}/facetable.json?{k}={v}&_extra=human_description_en,count")
add("fixtures", "filters", f"{F}/facetable.json?_where=pk>10", f"{F}/facetable.json?_where=pk>10&_where=pk<14",
    f"{F}/facetable.json?state=CA&_extra=count_sql", f"{F}/simple_primary_key.json?content__isblank=1",
    f"{F}/facetable.json?_city_id__bogus=1", f"{F}/facetable.json?bogus=1")
# _through
add("fixtures", "through", f"{F}/roadside_attractions.json?_through=" + q('{"table":"roadside_attraction_characteristics","column":"characteristic_id","value":"1"}'),
    f"{F}/roadside_attractions.json?_through=" + q('{"table":"roadside_attraction_characteristics","column":"characteristic_id","value":"2"}') + "&_extra=human_description_en",
    f"{F}/roadside_attractions.json?_through=bad")
# facets
add("fixtures", "facets", f"{F}/facetable.json?_facet=state", f"{F}/facetable.json?_facet=state&_facet=_city_id",
    f"{F}/facetable.json?_facet=_city_id&_labels=on", f"{F}/facetable.json?_facet_array=tags",
    f"{F}/facetable.json?_facet_date=created", f"{F}/facetable.json?_facet=state&_facet_size=1",
    f"{F}/facetable.json?_facet=state&_facet_size=max", f"{F}/facetable.json?_facet=planet_int&_facet=on_earth",
    f"{F}/facetable.json?_facet=state&state=CA", f"{F}/facetable.json?_facet=nope",
    f"{F}/facetable.json?_extra=suggested_facets&_size=0", f"{F}/facetable.json?_facet=state&_nofacet=1",
    f"{F}/facetable.json?_facet=state&_facet=state", f"{F}/facetable.json?_facet=_neighborhood&_facet_size=3",
    f"{F}/facetable.json?_facet_array=tags&tags__arraycontains=tag2", f"{F}/facetable.json?_facet=created&_facet_date=created")
# search
add("fixtures", "search", f"{F}/searchable.json?_search=dog", f"{F}/searchable.json?_search=dog+cat",
    f"{F}/searchable.json?_search=%22dog%22", f"{F}/searchable.json?_search=dog&_searchmode=raw",
    f"{F}/searchable.json?_search=te*&_searchmode=raw", f"{F}/searchable.json?_search_text1=dog",
    f"{F}/searchable.json?_search=", f"{F}/searchable.json?_search=nothingmatches", f"{F}/searchable.json?_search=dog&_extra=count",
    f"{F}/facetable.json?_search=dog")
# extras
extras = ["count", "columns", "all_columns", "next_url", "facet_results", "suggested_facets", "facets_timed_out",
          "human_description_en", "query", "count_sql", "primary_keys", "table_definition", "view_definition",
          "expandable_columns", "is_view", "private", "database", "table", "database_color", "metadata", "request",
          "display_columns", "extras", "column_types", "renderers", "form_hidden_args", "set_column_type_ui",
          "sort", "sort_desc", "filters", "render_cell", "debug", "actions", "custom_table_templates"]
for e in extras:
    add("fixtures", "extras", f"{F}/facetable.json?_size=1&_extra={e}", f"{F}/simple_view.json?_size=1&_extra={e}")
add("fixtures", "extras", f"{F}/compound_three_primary_keys.json?_size=1&_extra=primary_keys,count,next_url",
    f"{F}/facetable.json?_size=1&_extra=count&_extra=columns")
# shapes
for t in ["facetable", "compound_primary_key", "no_primary_key", "simple_view"]:
    for sh in ["objects", "arrays", "array", "arrayfirst", "object"]:
        add("fixtures", "shapes", f"{F}/{t}.json?_size=3&_shape={sh}")
add("fixtures", "shapes", f"{F}/facetable.json?_size=2&_shape=array&_nl=on", f"{F}/facetable.json?_shape=bogus",
    f"{F}/compound_three_primary_keys.json?_size=2&_shape=object")
# labels
add("fixtures", "labels", f"{F}/facetable.json?_labels=on&_size=4", f"{F}/facetable.json?_label=_city_id&_size=2",
    f"{F}/complex_foreign_keys.json?_labels=on", f"{F}/custom_foreign_key_label.json?_labels=on",
    f"{F}/foreign_key_references.json?_labels=on", f"{F}/foreign_key_references.json?_labels=on&_shape=array",
    f"{F}/roadside_attraction_characteristics.json?_labels=on", f"{F}/facetable.json?_labels=off&_size=1",
    f"{F}/facetable.csv?_labels=on&_size=3")
# rows
for r in ["facetable/1", "compound_primary_key/a,b", "compound_primary_key/a~2Fb,~2Ec-d", "no_primary_key/1",
          "simple_primary_key/1", "binary_data/1", "binary_data/3", "infinity/1", "foreign_key_references/1",
          "compound_three_primary_keys/a,a,a", "facetable/99", "nope/1", "simple_view/1", "primary_key_multiple_columns/1",
          "table~2Fwith~2Fslashes~2Ecsv/3", "123_starts_with_digits/1", "facet_cities/1", "roadside_attractions/1"]:
    add("fixtures", "rows", f"{F}/{r}.json")
add("fixtures", "rows", f"{F}/facetable/1.json?_shape=objects", f"{F}/facetable/1.json?_shape=array",
    f"{F}/facetable/1.json?_shape=arrays", f"{F}/facetable/1.json?_extra=foreign_key_tables",
    f"{F}/facet_cities/1.json?_extra=foreign_key_tables", f"{F}/facetable/1.json?_extra=columns,query,private",
    f"{F}/compound_primary_key/a,b.json?_shape=object", f"{F}/simple_primary_key/1.json?_extra=foreign_key_tables")
# query
for s in ["select 1", "select 1 as one, 'two' as two", "select * from facetable limit 3",
          "select * from facet_cities order by name", "select content from simple_primary_key where id = :id",
          "select :a || :b as ab", "select nope from facetable", "select * from nope", "update facetable set state = 'X'",
          "select 1; select 2", "select sqlite_version() like '3%'", "with x as (select 1 as a) select * from x",
          "explain select 1", "select json('[1,2]') as j", "select cast('inf' as real)", "select 1e999 as big",
          "select x'00ff' as b", "select zeroblob(2) as z", "PRAGMA table_info(facetable)",
          "select * from pragma_table_info('facetable')", "select null as n", "select 1.0 as f, 2 as i",
          "select * from compound_three_primary_keys limit 1001", "select 1 as a, 2 as a"]:
    add("fixtures", "query", f"{F}/-/query.json?sql=" + q(s))
add("fixtures", "query", f"{F}/-/query.json?sql=" + q("select content from simple_primary_key where id = :id") + "&id=2",
    f"{F}/-/query.json?sql=" + q("select :a || :b as ab") + "&a=x&b=y",
    f"{F}/-/query.json", f"{F}/-/query.json?sql=", f"{F}/-/query.json?sql=select+1&_shape=array",
    f"{F}/-/query.json?sql=select+1&_shape=arrays", f"{F}/-/query.json?sql=select+1&_shape=arrayfirst",
    f"{F}/-/query.json?sql=select+1&_shape=object", f"{F}/-/query.json?sql=select+1&_extra=columns",
    f"{F}/-/query.json?sql=select+1&_extra=query", f"{F}/-/query.json?sql=select+1&_extra=count",
    f"{F}/-/query.json?sql=" + q("select '[1,2]' as j") + "&_json=j",
    f"{F}/-/query.json?sql=" + q("select * from infinity") + "&_json_infinity=1",
    f"{F}/-/query.json?sql=" + q("select * from infinity"),
    f"{F}/fixtures.json?sql=select+1", f"{F}.json?sql=select+1&_shape=array")
add("fixtures", "json", f"{F}/facetable.json?_size=2&_json=tags", f"{F}/facetable.json?_size=2&_json=tags&_json=complex_array",
    f"{F}/infinity.json?_json_infinity=1", f"{F}/infinity.json?_json_infinity=on", f"{F}/facetable.json?_size=1&_json=nope")
# csv
add("fixtures", "csv", f"{F}/facetable.csv", f"{F}/facetable.csv?_size=2", f"{F}/facetable.csv?_size=2&_header=off",
    f"{F}/facetable.csv?_labels=on&_size=2", f"{F}/binary_data.csv", f"{F}/facetable.csv?_stream=1&_size=2",
    f"{F}/facetable.csv?_stream=on", f"{F}/simple_primary_key.csv?_dl=1", f"{F}/compound_three_primary_keys.csv?_size=5",
    f"{F}/-/query.csv?sql=select+1+as+a", f"{F}/-/query.csv?sql=" + q("select * from binary_data"),
    f"{F}/-/query.csv?sql=select+1+as+a&_header=off", f"{F}/infinity.csv", f"{F}/no_primary_key.csv?_size=3",
    f"{F}/facetable.csv?_facet=state&_size=1", f"{F}/simple_view.csv", f"{F}/nope.csv")
# blobs
add("fixtures", "blobs", f"{F}/binary_data.json", f"{F}/binary_data/1.json", f"{F}/binary_data.json?_shape=array",
    f"{F}/binary_data/1.blob?_blob_column=data", f"{F}/binary_data/2.blob?_blob_column=data",
    f"{F}/binary_data/3.blob?_blob_column=data", f"{F}/binary_data/1.blob?_blob_column=nope", f"{F}/binary_data/1.blob",
    f"{F}/binary_data/99.blob?_blob_column=data", f"{F}/-/query.blob?sql=" + q("select data from binary_data") + "&_blob_column=data&_blob_hash=x")
# errors
add("fixtures", "errors", "/nope.json", "/nope", f"{F}/nope.json", f"{F}/facetable.json?_size=-1", f"{F}/facetable.json?_size=x",
    f"{F}/facetable.json?_size=2000", f"{F}/facetable.json?_sort=nope", f"{F}/facetable.json?_next=bogus",
    f"{F}/facetable.json?_col=nope", f"{F}/facetable.json?_nocol=nope", f"{F}/facetable.json?pk__in=%5B",
    f"{F}/facetable/1.csv", f"{F}/facetable.xyz", f"{F}.xyz", f"{F}/-/nope.json", "/-/nope.json",
    f"{F}/facetable.json?_facet_size=x&_facet=state", f"{F}/sortable.json?_sort_desc=nope")

# ---------- edge ----------
E = "/edge"
add("edge", "meta", "/.json", "/edge.json", "/-/databases.json")
add("edge", "schema", "/-/schema.json", "/edge/-/schema.json", "/edge/items/-/schema.json", "/edge/items_view/-/schema.json",
    "/edge/" + tilde("ü space") + "/-/schema.json", "/edge/" + tilde("secret/x") + "/-/schema.json")
for name in ["secret/x", "s.json", "a.b", "x~y", "ü space", "%2F", "100%"]:
    t = tilde(name)
    add("edge", "names", f"{E}/{t}.json", f"{E}/{t}.json?_size=1&_extra=table,database,count", f"{E}/{t}/1.json",
        f"{E}/{t}.csv", f"{E}/{t}.json?_shape=array", f"{E}/{t}/2.json?_shape=array")
add("edge", "names", f"{E}/{tilde('ü space')}.json?{q('ö col')}=eins", f"{E}/{tilde('ü space')}.json?_sort={q('ö col')}",
    f"{E}/s.json", f"{E}/a.b.json", f"{E}/x~7Ey.json")
for code in ["a/b", "c.d", "e~f", "g h", "ü", "%2F", "x,y", "plain", "-dash", "_under", "1.5", "NULL", "missing"]:
    add("edge", "keys", f"{E}/text_keys/{tilde(code)}.json")
for a in ["x", "y/z", "a,b", "ü"]:
    add("edge", "keys", f"{E}/compound/{tilde(a)},1.json", f"{E}/compound/{tilde(a)},10.json")
add("edge", "keys", f"{E}/compound/x.json", f"{E}/compound/x,1,2.json", f"{E}/no_pk/1.json", f"{E}/no_pk/130.json",
    f"{E}/no_pk/x.json", f"{E}/blobs/1.json", f"{E}/text_keys.json?_shape=object", f"{E}/compound.json?_shape=object",
    f"{E}/no_pk.json?_shape=object&_size=3", f"{E}/compound.json?_size=2", f"{E}/compound.json?_sort=v&_size=2")
for col in ["score", "rank", "note", "category_id", "created", "name"]:
    add("edge", "sort", f"{E}/items.json?_sort={col}&_size=5", f"{E}/items.json?_sort_desc={col}&_size=5",
        f"{E}/items.json?_sort={col}&_size=5&_col={col}")
add("edge", "sort", f"{E}/no_pk.json?_sort=size&_size=4", f"{E}/no_pk.json?_sort_desc=size&_size=4",
    f"{E}/no_pk.json?_size=5&_next=100", f"{E}/items.json?_size=3&_next=247", f"{E}/items.json?_sort=score&_size=3&_next=%24null%2C249",
    f"{E}/items.json?_sort_desc=score&_size=3&_next=%24null%2C3", f"{E}/items.json?_size=2&_col=name",
    f"{E}/items.json?_size=2&_nocol=tags&_nocol=note", f"{E}/text_keys.json?_size=3", f"{E}/text_keys.json?_size=3&_next=e~7Ef")
for v in ["items_view", "small_view"]:
    add("edge", "views", f"{E}/{v}.json", f"{E}/{v}.json?_size=4", f"{E}/{v}.json?_size=4&_next=4", f"{E}/{v}.json?_size=100&_next=200",
        f"{E}/{v}.json?_sort=name&_size=3", f"{E}/{v}.json?_sort_desc=score&_size=3", f"{E}/{v}.csv?_size=3",
        f"{E}/{v}.json?_size=2&_extra=count,next_url,view_definition,is_view")
add("edge", "views", f"{E}/items_view.json?_facet=category_id&_size=0", f"{E}/items_view.json?name__contains=00&_size=3",
    f"{E}/items_view.json?_search=x&_fts_table=articles_fts&_fts_pk=id")
for k, v in [("score__gt", "10"), ("score__isnull", "1"), ("rank__lt", "3"), ("note__isblank", "1"), ("note__notblank", "1"),
             ("note__exact", ""), ("note", ""), ("category_id__in", "1,2"), ("category_id__notin", "1,2"), ("created__date", "2024-03-04"),
             ("tags__arraycontains", "red"), ("tags__arraynotcontains", "red"), ("name__notcontains", "1"), ("name__endswith", "0"),
             ("score", "5.286"), ("rank", "1&category_id=2")]:
    add("edge", "filters", f"{E}/items.json?{k}={v}&_size=3&_extra=count,human_description_en")
add("edge", "facets", f"{E}/items.json?_facet=category_id&_size=0", f"{E}/items.json?_facet=rank&_size=0",
    f"{E}/items.json?_facet_array=tags&_size=0", f"{E}/items.json?_facet_date=created&_size=0",
    f"{E}/items.json?_facet=note&_size=0&_facet_size=3", f"{E}/items.json?_size=0&_extra=suggested_facets",
    f"{E}/items.json?_facet=category_id&_labels=on&_size=0", f"{E}/items.json?_facet=category_id&category_id=2&_size=0")
add("edge", "search", f"{E}/articles.json?_search=dog", f"{E}/articles.json?_search=dogs", f"{E}/articles.json?_search_title=cat",
    f"{E}/articles.json?_search=dog&_searchmode=raw", f"{E}/articles.json?_search=", f"{E}/articles.json?_search=dog&_extra=count",
    f"{E}/notes.json?_search=bread", f"{E}/notes.json?_search_heading=bread", f"{E}/notes.json?_search=bre*&_searchmode=raw",
    f"{E}/notes.json?_search=", f"{E}/notes.json?_search=bread&_sort=id", f"{E}/articles_fts.json")
add("edge", "through", f"{E}/items.json?_size=3&_through=" + q('{"table":"item_tags","column":"tag_id","value":"1"}'),
    f"{E}/items.json?_size=3&_extra=count&_through=" + q('{"table":"item_tags","column":"tag_id","value":"3"}'))
add("edge", "blobs", f"{E}/blobs.json", f"{E}/blobs/2.json", f"{E}/blobs/3.json", f"{E}/blobs.csv",
    f"{E}/blobs/1.blob?_blob_column=data", f"{E}/blobs/3.blob?_blob_column=data", f"{E}/blobs/5.blob?_blob_column=data",
    f"{E}/blobs.json?_shape=array", f"{E}/-/query.json?sql=" + q("select data from blobs"))
add("edge", "labels", f"{E}/items.json?_labels=on&_size=3", f"{E}/items.json?_label=category_id&_size=3",
    f"{E}/item_tags.json?_labels=on&_size=3", f"{E}/items.csv?_labels=on&_size=2", f"{E}/items/1.json?_extra=foreign_key_tables",
    f"{E}/categories/1.json?_extra=foreign_key_tables", f"{E}/tags/1.json?_extra=foreign_key_tables")
add("edge", "query", f"{E}/-/query.json?sql=" + q("select * from items where score is null limit 3"),
    f"{E}/-/query.json?sql=" + q("select * from \"secret/x\""), f"{E}/-/query.json?sql=" + q("select count(*) from items"),
    f"{E}/-/query.csv?sql=" + q("select id, name from items limit 3"),
    f"{E}/-/query.json?sql=" + q("select name from items where id = :id") + "&id=3",
    f"{E}/-/query.json?sql=" + q("select * from notes_fts where notes_fts match :q") + "&q=bread")
add("edge", "csv", f"{E}/items.csv?_size=3", f"{E}/items.csv?_size=3&_header=off", f"{E}/text_keys.csv",
    f"{E}/compound.csv", f"{E}/no_pk.csv?_size=3", f"{E}/items.csv?_stream=yes&_size=200&_col=name")

# ---------- cors ----------
add("cors", "cors", "/.json", "/edge.json", "/edge/items.json?_size=1", "/edge/items/1.json", "/edge/-/query.json?sql=select+1",
    "/edge/nope.json", "/-/versions.json", "/edge/items.csv?_size=1", "/edge/-/schema.json")

os.makedirs(OUT, exist_ok=True)
total = 0
for (setup, fam), urls in lists.items():
    seen = []
    for u in urls:
        if u not in seen:
            seen.append(u)
    with open(f"{OUT}/{setup}-{fam}.txt", "w") as f:
        f.write("\n".join(seen) + "\n")
    total += len(seen)
print(total, "urls in", len(lists), "lists")
