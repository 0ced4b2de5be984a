"""Push notifications: device registrations, Firebase Cloud Messaging HTTP v1 and Web Push."""
