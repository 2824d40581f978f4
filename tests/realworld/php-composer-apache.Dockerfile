FROM composer:2 AS vendor
WORKDIR /app
COPY composer.json composer.lock ./
RUN composer install --no-dev --no-scripts --no-autoloader --prefer-dist
COPY . .
RUN composer dump-autoload --optimize --classmap-authoritative

FROM php:8.3-apache
RUN docker-php-ext-install pdo pdo_mysql opcache \
    && a2enmod rewrite headers
ENV APACHE_DOCUMENT_ROOT /var/www/html/public
RUN sed -ri -e 's!/var/www/html!${APACHE_DOCUMENT_ROOT}!g' /etc/apache2/sites-available/*.conf
COPY --from=vendor /app /var/www/html
RUN chown -R www-data:www-data /var/www/html/storage
# expect-warning: LegacyKeyValueFormat
