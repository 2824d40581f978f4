# check=skip=JSONArgsRecommended;error=true
FROM nginx:alpine
COPY site/ /usr/share/nginx/html/
CMD nginx -g "daemon off;"
