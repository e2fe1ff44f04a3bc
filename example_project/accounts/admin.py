from django.contrib import admin

from example_project.accounts.models import Profile


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "welcome_email_sent_at")
    list_select_related = ("user",)
