"""The study's tables: posts by authors to read, accounts for the
read-then-write transaction, counters for the hot row, events for inserts."""
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100)


class Post(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    title = models.CharField(max_length=200)
    body = models.TextField()
    score = models.IntegerField()


class Account(models.Model):
    balance = models.IntegerField(default=1000)


class Counter(models.Model):
    slug = models.SlugField(unique=True)
    count = models.IntegerField(default=0)


class Event(models.Model):
    post_id = models.IntegerField()
    kind = models.CharField(max_length=20)
    payload = models.TextField(blank=True)
