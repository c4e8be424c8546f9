"""Prepare a fresh database for one benchmark run: migrate, set the SQLite
journal mode (stored in the file, so it must be set before the server
starts), and seed the tables the endpoints use. Refuses to seed a database
that already has posts, so it never doubles the data."""
import random

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from studyapp import views
from studyapp.models import Account, Author, Counter, Post

WORDS = (
    "sqlite lock journal write ahead log reader writer busy timeout transaction commit rollback "
    "checkpoint page cache index query table row column server worker process thread request "
    "latency throughput durable sync disk memory snapshot shared reserved pending exclusive"
).split()


class Command(BaseCommand):
    help = "Migrate, set the journal mode and seed the study's data."

    def handle(self, *args, **options):
        call_command("migrate", verbosity=0, interactive=False)
        if connection.vendor == "sqlite":
            mode = settings.DATABASES["default"]["STUDY"]["journal_mode"]
            if mode:
                with connection.cursor() as cur:
                    cur.execute("PRAGMA journal_mode = %s" % mode)
                    got = cur.fetchone()[0]
                if got.lower() != mode:
                    raise CommandError("journal_mode %s was not applied (SQLite says %s)" % (mode, got))
        if Post.objects.exists():
            self.stdout.write("already seeded")
            return
        rnd = random.Random(1)
        with transaction.atomic():
            Author.objects.bulk_create([Author(id=i, name="Author %d" % i) for i in range(1, views.AUTHORS + 1)])
            Post.objects.bulk_create(
                [
                    Post(
                        id=i,
                        author_id=1 + i % views.AUTHORS,
                        title=" ".join(rnd.choice(WORDS) for _ in range(5)),
                        body=" ".join(rnd.choice(WORDS) for _ in range(40)),
                        score=rnd.randrange(1000),
                    )
                    for i in range(1, views.POSTS + 1)
                ],
                batch_size=1000,
            )
            Account.objects.bulk_create([Account(id=i, balance=1000) for i in range(1, views.ACCOUNTS + 1)])
            Counter.objects.bulk_create(
                [Counter(slug="hot", count=0)] + [Counter(slug="c%d" % i, count=0) for i in range(2, views.COUNTERS + 1)]
            )
        if connection.vendor == "postgresql":
            # Explicit ids do not advance PostgreSQL's sequences.
            with connection.cursor() as cur:
                for model in (Author, Post, Account, Counter):
                    table = model._meta.db_table
                    cur.execute(
                        "SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT MAX(id) FROM " + table + "))",
                        [table],
                    )
        self.stdout.write("seeded %d posts" % views.POSTS)
