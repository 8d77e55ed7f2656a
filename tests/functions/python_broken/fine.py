def handler(event, context):
    return "fine"
